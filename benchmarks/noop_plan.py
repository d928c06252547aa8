"""A no-op `plan` (and `validate`) over N settled resources, with the service listing their jobs.

    .venv/bin/python -m benchmarks.noop_plan                  # N = 10,000, 3 runs of each
    .venv/bin/python -m benchmarks.noop_plan --sizes 1000 --repeat 5
    .venv/bin/python -m benchmarks.noop_plan --dir /tmp/noop   # build once, reuse after

Issue 22's acceptance row "plan over 10,000 manifests in at most 10 s", as a user meets it after
`apply --wait`: `benchmarks.scale`'s project of N small file manifests, a state in which every
one is settled (`benchmarks.state_reads`, with this project's tags and the cleanup recorded as
apply leaves it), and an emulator that lists each resource's succeeded job under its tag, seeded
through the emulator's admin API rather than applied (which takes minutes at 10,000). The first
runs fill the caches under `.reconciler/` (as the first command after a checkout would); the
runs after them are what a user running `plan` again meets. Each run is a `python -m
reconciler` subprocess against the emulator (wall time, its own CPU time, peak RSS), and must
exit 0 (`plan --detailed-exitcode`: no changes).

`--dir` keeps the project, its state and the emulator's data there (with the emulator's port,
which every attempt records as its `base_url`), so a second invocation, say on another commit,
measures the same project without building it again; `.reconciler/` is removed before each
size's first run, so that run is still the cold one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import _harness, state_reads
from benchmarks.scale import write_project
from reconciler.live.tags import project_token
from reconciler.manifests.desired import DesiredResource
from reconciler.state.backend import Blob
from reconciler.state.document import ResourceRecord

STEPS = (("no-op plan", ("plan", "--detailed-exitcode")), ("validate", ("validate",)))


def settled_project(root: Path, resources: int, base_url: str) -> list[dict[str, Any]]:
    """The project and its settled state; the batches the emulator must list for it."""
    write_project(root, resources, parallelism=32)
    token = project_token("scale")
    batches: list[dict[str, Any]] = []
    plain = state_reads.settled

    def settled(
        resource: DesiredResource, index: int, results: Path
    ) -> tuple[ResourceRecord, Blob]:
        record, blob = plain(resource, index, results)
        attempt = record.attempts[0]
        tag = attempt.tag.replace("[rc:00000000/", f"[rc:{token}/")
        batches.append(
            {
                "name": attempt.job_name,
                "model": f"models/{resource.manifest.spec.model}",
                "displayName": tag,
                "inputConfig": {"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "x"}]}]}, "metadata": {"key": "k0"}}]}},
            }
        )  # fmt: skip
        done = attempt.collected_at
        attempt = attempt.model_copy(
            update={"tag": tag, "input_deleted_at": done, "output_deleted_at": done, "base_url": base_url}
        )  # fmt: skip
        return record.model_copy(update={"attempts": (attempt,)}), blob

    state_reads.settled = settled
    try:
        state_reads.write_settled_state(root)
    finally:
        state_reads.settled = plain
    return batches


def seed(base_url: str, batches: list[dict[str, Any]]) -> None:
    for start in range(0, len(batches), 500):
        body = json.dumps({"batches": batches[start : start + 500]}).encode()
        request = urllib.request.Request(
            f"{base_url}/_emulator/resources",
            data=body,
            method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()


@contextlib.contextmanager
def prepared(workdir: Path, n: int) -> Iterator[tuple[Path, str]]:
    """The settled project of `n` resources under `workdir` (built unless an earlier run left
    it there) and the base URL of an emulator listing its jobs, for the block's duration."""
    root, ready = workdir / f"noop-{n}", workdir / f"noop-{n}.port"
    port = int(ready.read_text()) if ready.exists() else _harness.free_port()
    with _harness.emulator(
        workdir / f"emulator-{n}",
        port=port,
        job_seconds=0.1,
        job_ttl_seconds=10**8,
        max_concurrent_jobs=10**8,
    ) as emulator:
        if not ready.exists():
            shutil.rmtree(root, ignore_errors=True)
            seed(emulator.base_url, settled_project(root, n, emulator.base_url))
            ready.write_text(str(port))
        shutil.rmtree(root / ".reconciler", ignore_errors=True)
        yield root, emulator.base_url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, help="keep the projects and the emulator's data here, to reuse"
    )
    args = parser.parse_args()
    print(_harness.machine(), flush=True)
    with contextlib.ExitStack() as stack:
        workdir = args.dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-noop-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            with prepared(workdir.resolve(), n) as (root, base_url):
                for name, step in STEPS:
                    runs = []
                    for _ in range(args.repeat):
                        run = _harness.run_measured(
                            [sys.executable, "-m", "reconciler", "-C", str(root), *step],
                            _harness.cli_env(base_url),
                        )
                        if run.exit_code != 0:
                            raise RuntimeError(f"{name} exited {run.exit_code}:\n{run.stderr_tail}")
                        runs.append(run)
                        print(
                            f"N={n} {name:<10} {run.seconds:6.2f} s  cpu {run.cpu_seconds:6.2f} s  "
                            f"peak {_harness.mib(run.peak_kib):5.0f} MiB",
                            flush=True,
                        )
                    later = runs[1:] or runs
                    print(
                        f"N={n} {name:<10} median of the runs after the first: "
                        f"{statistics.median(r.seconds for r in later):.2f} s, cpu "
                        f"{statistics.median(r.cpu_seconds for r in later):.2f} s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
