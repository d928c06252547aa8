"""Start-up: `reconciler --help` and `validate` on an empty project against a bare interpreter.

    .venv/bin/python -m benchmarks.startup --repeat 15

Each command runs `--repeat` times in a fresh subprocess, interleaved with the baseline
(`python -c pass`, the same interpreter and site-packages), so load on a shared machine hits
every side alike. Printed: the median and the spread (min-max) of each, and the ratio of the
medians. Target (issue 22): each command <= 20x the bare interpreter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import _harness

TARGET_RATIO = 20.0

EMPTY_PROJECT = "project: empty\nmanifests: manifests\nstate: state/reconciler.state.json\n"


@dataclass(frozen=True, slots=True)
class Timing:
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.seconds), max(self.seconds)


def empty_project(root: Path) -> Path:
    """A project with a reconciler.yaml and an empty manifests directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text(EMPTY_PROJECT)
    (root / "manifests").mkdir(exist_ok=True)
    return root


def _time(argv: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    began = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def measure(repeat: int, scratch: Path) -> dict[str, Timing]:
    root = empty_project(scratch / "empty-project")
    sides = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "reconciler --help": [sys.executable, "-m", "reconciler", "--help"],
        "reconciler validate": [sys.executable, "-m", "reconciler", "validate"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for argv in sides.values():  # one unmeasured run each: the page cache, .pyc files
        _time(argv, root)
    for _ in range(repeat):
        for name, argv in sides.items():
            seconds[name].append(_time(argv, root))
    return {name: Timing(name, values) for name, values in seconds.items()}


def report(timings: dict[str, Timing]) -> list[str]:
    base = timings["python -c pass"]
    lines = []
    for timing in timings.values():
        low, high = timing.spread
        line = (
            f"startup  {timing.name:<20} median {timing.median * 1000:6.1f} ms "
            f"(min {low * 1000:.1f}, max {high * 1000:.1f}, n={len(timing.seconds)})"
        )
        if timing is not base:
            ratio = timing.median / base.median
            verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
            line += (
                f": {ratio:.1f}x the bare interpreter (target <= {TARGET_RATIO:.0f}x: {verdict})"
            )
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"machine: {_harness.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        print("\n".join(report(measure(args.repeat, Path(scratch)))))


if __name__ == "__main__":
    main()
