"""Scale: N small file manifests through every step, and how each step grows with N.

    .venv/bin/python -m benchmarks.scale                      # N = 100, 1,000, 5,000
    .venv/bin/python -m benchmarks.scale --full               # ... and 10,000
    .venv/bin/python -m benchmarks.scale --sizes 100,1000     # chosen sizes

For each N, a fresh project of N file-source manifests (2-5 requests each, their JSONL beside
them) and a fresh emulator process; then, in order, each a `python -m reconciler` subprocess:
`validate`, `plan` (the service empty), `apply --no-wait` (upload and create every job),
`apply --wait` (the jobs have ended by then: collect every result) and `plan` again (a no-op).
Per step: wall time, the step's CPU time and peak RSS (its own rusage, from wait4), the
emulator process's CPU time during the step (from /proc: a superlinear emulator slows apply
down as surely as apply's own work), API calls counted by the
emulator (`/_emulator/calls`), state writes (the state's serial before and after) and the state's
size on disk afterwards (the document and its blobs). Then the growth per added resource between
successive N, in ms: a straight line is linear scaling, a rising one is not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _harness

STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("validate", ("validate",)),
    ("plan", ("plan", "--detailed-exitcode")),
    ("apply --no-wait", ("apply", "--auto-approve", "--no-wait")),
    ("apply --wait", ("apply", "--auto-approve", "--wait")),
    ("no-op plan", ("plan", "--detailed-exitcode")),
)
"""Each step's name and its arguments, in the order they run against one project."""

STATE = Path("state") / "reconciler.state.json"


@dataclass(frozen=True, slots=True)
class Step:
    """One step at one N, as measured."""

    name: str
    resources: int
    seconds: float
    cpu_seconds: float
    peak_kib: int
    calls: dict[str, int]
    state_writes: int | None
    state_bytes: int
    exit_code: int
    emulator_cpu_seconds: float = 0.0
    """The emulator process's CPU time during the step."""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def write_project(root: Path, resources: int, parallelism: int) -> None:
    """N file-source manifests of 2-5 requests each; limits high enough never to refuse a plan."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "reconciler.yaml").write_text(
        "project: scale\nmanifests: manifests\nstate: state/reconciler.state.json\n"
        f"parallelism: {parallelism}\n"
        "guardrails:\n  max_concurrent_jobs: 1000000\n  max_estimated_cost_usd: 1000000\n"
    )
    for i in range(resources):
        name = f"r{i:05d}"
        lines = (
            json.dumps(
                {"key": f"k{j}", "request": {"contents": [{"parts": [{"text": f"{i} {j}"}]}]}}
            )
            for j in range(2 + i % 4)
        )
        (root / "data" / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
        (root / "manifests" / f"{name}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: BatchJob\n"
            f"metadata:\n  name: {name}\nspec:\n  model: gemini-2.5-flash\n"
            f"  source:\n    file: data/{name}.jsonl\n  output: results/{name}.jsonl\n"
        )


def _state_serial(root: Path) -> int | None:
    try:
        serial = json.loads((root / STATE).read_bytes()).get("serial")
    except (OSError, ValueError, AttributeError):
        return None
    return serial if isinstance(serial, int) else None


def _state_bytes(root: Path) -> int:
    state_dir = (root / STATE).parent
    if not state_dir.exists():
        return 0
    return sum(path.stat().st_size for path in state_dir.rglob("*") if path.is_file())


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far, from /proc (0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(
    root: Path, base_url: str, args: Sequence[str], profile: Path | None = None
) -> _harness.Measured:
    """One CLI run against the emulator, measured alone; with `profile`, under py-spy (100 Hz,
    the thread holding the GIL, collapsed stacks written there); its CPU figures then include py-spy's own."""
    argv = [sys.executable, "-m", "reconciler", "-C", str(root), *args]
    if profile is not None:
        spy = Path(sys.executable).with_name("py-spy")
        argv = [
            str(spy),
            "record",
            "--gil",
            "--format",
            "raw",
            "--rate",
            "100",
            "-o",
            str(profile),
            "--",
            *argv,
        ]
    return _harness.run_measured(argv, _harness.cli_env(base_url))


def measure(
    resources: int,
    scratch: Path,
    parallelism: int,
    latency: float,
    job_seconds: float,
    steps_wanted: Sequence[str] | None = None,
    profile: Path | None = None,
) -> list[Step]:
    root = scratch / f"scale-{resources}"
    write_project(root, resources, parallelism)
    steps = []
    with _harness.emulator(
        scratch / f"emulator-{resources}",
        latency_seconds=latency,
        job_seconds=job_seconds,
        max_concurrent_jobs=10_000_000,
    ) as emulator:
        for name, args in STEPS:
            if steps_wanted is not None and name not in steps_wanted:
                continue
            emulator.reset_calls()
            before = _state_serial(root) or 0
            emulator_cpu = _process_cpu(emulator.process.pid)
            profiled = (
                None
                if profile is None
                else profile / f"{resources}-{name.replace(' ', '').replace('-', '')}.txt"
            )
            run = _run(root, emulator.base_url, args, profiled)
            emulator_cpu = _process_cpu(emulator.process.pid) - emulator_cpu
            if run.exit_code not in (0, 2):
                raise RuntimeError(
                    f"{name} at N={resources} exited {run.exit_code}:\n{run.stderr_tail}"
                )
            after = _state_serial(root)
            steps.append(
                Step(
                    name=name,
                    resources=resources,
                    seconds=run.seconds,
                    cpu_seconds=run.cpu_seconds,
                    emulator_cpu_seconds=emulator_cpu,
                    peak_kib=run.peak_kib,
                    calls=emulator.calls(),
                    state_writes=None if after is None else after - before,
                    state_bytes=_state_bytes(root),
                    exit_code=run.exit_code,
                )
            )
    return steps


def report(runs: dict[int, list[Step]]) -> list[str]:
    lines = []
    for resources, steps in runs.items():
        for step in steps:
            writes = "?" if step.state_writes is None else str(step.state_writes)
            lines.append(
                f"scale    N={resources:<6} {step.name:<16} {step.seconds:7.2f} s "
                f"{step.seconds / resources * 1000:6.2f} ms/res  cpu {step.cpu_seconds:6.2f} s  emulator cpu {step.emulator_cpu_seconds:6.2f} s  peak {_harness.mib(step.peak_kib):6.0f} MiB  "
                f"{step.total_calls:6} calls  {writes:>6} state writes  "
                f"state {step.state_bytes / 1024:8.0f} KiB ({step.state_bytes / resources:5.0f} B/res)"
                f"  exit {step.exit_code}"
            )
    sizes = sorted(runs)
    for smaller, larger in itertools.pairwise(sizes):
        added = larger - smaller
        growth = [
            f"{a.name} {(b.seconds - a.seconds) / added * 1000:.2f}"
            for a, b in zip(runs[smaller], runs[larger], strict=True)
        ]
        lines.append(
            f"scale    growth N={smaller}->{larger}, ms per added resource: {'; '.join(growth)}"
        )
    return lines


def figures(runs: dict[int, list[Step]]) -> dict[str, Any]:
    """The measurements as plain data (for `--json`)."""
    return {
        str(n): [
            {
                "step": s.name,
                "seconds": s.seconds,
                "cpu_seconds": s.cpu_seconds,
                "emulator_cpu_seconds": s.emulator_cpu_seconds,
                "peak_kib": s.peak_kib,
                "calls": s.calls,
                "state_writes": s.state_writes,
                "state_bytes": s.state_bytes,
                "exit": s.exit_code,
            }
            for s in steps
        ]
        for n, steps in runs.items()
    }


def run(
    sizes: Sequence[int],
    scratch: Path,
    parallelism: int,
    latency: float,
    job_seconds: float,
    steps_wanted: Sequence[str] | None = None,
    profile: Path | None = None,
) -> dict[int, list[Step]]:
    runs: dict[int, list[Step]] = {}
    for resources in sizes:
        runs[resources] = measure(
            resources, scratch, parallelism, latency, job_seconds, steps_wanted, profile
        )
        print("\n".join(report({resources: runs[resources]})), flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="add N = 10,000")
    parser.add_argument("--sizes", help="comma-separated N (default 100,1000,5000)")
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.0, help="emulator latency per call")
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--steps",
        help="comma-separated subset of the steps, in their order (e.g. 'validate,plan' for the "
        "load and plan curve without the long applies)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record each step under py-spy (`pip install py-spy`) into this directory, as "
        "collapsed stacks named <N>-<step>.txt; CPU figures then include py-spy's own",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    sizes = (
        [int(n) for n in args.sizes.split(",")]
        if args.sizes
        else [100, 1000, 5000, *([10_000] if args.full else [])]
    )
    print(f"machine: {_harness.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        steps = args.steps.split(",") if args.steps else None
        runs = run(
            sizes,
            Path(scratch),
            args.parallelism,
            args.latency,
            args.job_seconds,
            steps,
            args.profile,
        )
    lines = report(runs)
    print("\n".join(line for line in lines if "growth" in line))
    if args.json:
        args.json.write_text(json.dumps(figures(runs), indent=2))


if __name__ == "__main__":
    main()
