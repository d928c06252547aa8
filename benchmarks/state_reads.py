"""Reading a large settled state: `plan` (a no-op) and `status` at N resources, local and
PostgreSQL, and what one read of the state costs on its own.

    .venv/bin/python -m benchmarks.state_reads                 # N = 10,000
    .venv/bin/python -m benchmarks.state_reads --sizes 1000    # other sizes
    .venv/bin/python -m benchmarks.state_reads --inner         # the in-process reads only

A project of N small file manifests (`benchmarks.scale`'s), and a state in which every one of
them is settled: its one job succeeded at the current spec, its results collected to a file
that is there, its key digests stored. Such a state is made directly (as apply would have
recorded it) rather than by applying N jobs, which takes minutes here; a `plan
--detailed-exitcode` exiting 0 proves it is what apply leaves. The emulator lists no jobs (they
expired), so the plan is a no-op for every resource.

Per backend: `reconciler plan --detailed-exitcode` and `reconciler status` as subprocesses
(wall time, CPU time, peak RSS), then, in this process, one cold read of the state (a new
backend: no cache), the key digests the plan loads and a garbage collection of the blobs (as
every writing command runs on releasing the lock; here it finds nothing to delete), each with
what it asked of the storage (local: read system calls; PostgreSQL: statements sent).
PostgreSQL runs on a throwaway cluster as the integration tests start one; without the server
binaries it is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import _harness
from benchmarks.scale import write_project
from reconciler.cli.session import load_project_desired
from reconciler.clock import SystemClock
from reconciler.config import load_project
from reconciler.manifests.desired import DesiredResource
from reconciler.plan.planner import key_digests_wanted
from reconciler.state.backend import Blob, LockInfo, StateBackend, new_lineage
from reconciler.state.document import (
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    TokenUsage,
)
from reconciler.state.registry import open_backend
from reconciler.state.request_keys import key_digests_blob, load_key_digests
from tests.fixtures.postgres import find_bindir, run_postgres

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


def settled(resource: DesiredResource, index: int, results: Path) -> tuple[ResourceRecord, Blob]:
    """The record apply --wait leaves for `resource` (its results written to `results`), and
    its key digests blob."""
    data = b"".join(
        b'{"key":"k%d","response":{"candidates":[]}}\n' % j
        for j in range(resource.source.request_count)
    )
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_bytes(data)
    os.utime(results, (T0.timestamp(), T0.timestamp()))
    digests = key_digests_blob(dict(resource.source.key_digests.items()))
    job = f"batches/expired{index:08d}"
    file_name = f"files/in{index:08d}"
    attempt = JobAttempt(
        number=1,
        tag=f"[rc:00000000/{resource.name}@{resource.spec_hash[:12]}:1]",
        spec_hash=resource.spec_hash,
        request_count=resource.source.request_count,
        job_name=job,
        input_file=file_name,
        state=JobState.SUCCEEDED,
        intent_at=T0,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=30),
        ended_at=T0 + timedelta(seconds=30),
        output_file=f"files/batch-expired{index:08d}",
        endpoint="gemini",
        usage=TokenUsage(prompt=40, output=90, responses=resource.source.request_count),
        cost_usd=0.0001,
        collected_at=T0 + timedelta(seconds=60),
    )
    record = ResourceRecord(
        name=resource.name,
        spec_hash=resource.spec_hash,
        replacing=resource.replacing_fields(),
        in_place=resource.in_place_fields(),
        input=InputRecord(
            sha256=resource.source.sha256,
            bytes=resource.source.bytes,
            request_count=resource.source.request_count,
            file_name=file_name,
            uploaded_at=T0,
            expires_at=T0 + timedelta(days=2),
        ),
        attempts=(attempt,),
        results=ResultsRecord(
            location=str(results.relative_to(results.parents[1])),
            sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data),
            succeeded=resource.source.request_count,
            collected_at=T0 + timedelta(seconds=60),
            from_attempts=(1,),
        ),
        key_digests_ref=digests.sha256,
    )
    return record, digests


def write_settled_state(root: Path) -> float:
    """Record every manifest of the project at `root` as settled; the seconds the first write
    of the state took (every record and blob new)."""
    project = load_project(root)
    desired = load_project_desired(project)
    backend = open_backend(project, clock=SystemClock(), lineage_factory=new_lineage)
    try:
        state = backend.read()
        digests: list[Blob] = []
        for index, name in enumerate(sorted(desired.resources)):
            record, blob = settled(
                desired.resources[name], index, root / "results" / f"{name}.jsonl"
            )
            state = state.with_resource(record)
            digests.append(blob)
        began = time.perf_counter()
        backend.put_blobs(digests)
        backend.write(state, state.serial)
        return time.perf_counter() - began
    finally:
        backend.close()


def _read_calls() -> int:
    """Read system calls this process has made so far (Linux's /proc/self/io; 0 elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("syscr:"):
                return int(line.split()[1])
    return 0


class _Counted:
    """What one read asks of the storage: read system calls (local), or statements sent to
    the server (PostgreSQL)."""

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def reads(self) -> Iterator[None]:
        before = _read_calls()
        try:
            yield
        finally:
            self.count = _read_calls() - before

    @contextlib.contextmanager
    def statements(self) -> Iterator[None]:
        import psycopg

        real: Any = psycopg.Connection.execute

        def counted(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(conn, *args, **kwargs)

        setattr(psycopg.Connection, "execute", counted)  # noqa: B010
        try:
            yield
        finally:
            setattr(psycopg.Connection, "execute", real)  # noqa: B010


def inner_reads(root: Path) -> dict[str, float]:
    """One cold read of the state, then the key digests a no-op plan loads: seconds, CPU
    seconds and storage requests of each."""
    project = load_project(root)
    desired = load_project_desired(project)
    figures: dict[str, float] = {}
    backend: StateBackend = open_backend(project, clock=SystemClock())
    local = not project.config.state.startswith("postgresql:")
    try:
        for step in ("read", "key digests", "gc"):
            counter = _Counted()
            watch = counter.reads() if local else counter.statements()
            began, began_cpu = time.perf_counter(), time.process_time()
            with watch:
                if step == "read":
                    state = backend.read()
                elif step == "key digests":
                    load_key_digests(backend, state, key_digests_wanted(desired, state))
                else:
                    with backend.lock(LockInfo.new("benchmark gc")):
                        collected = backend.collect_garbage()
                    assert collected.removed == 0 and collected.skipped is None, collected
            figures[f"{step} s"] = time.perf_counter() - began
            figures[f"{step} cpu s"] = time.process_time() - began_cpu
            figures[f"{step} requests"] = counter.count
    finally:
        backend.close()
    return figures


def cli_steps(root: Path, emulator: _harness.Emulator) -> list[str]:
    lines = []
    for name, args in (
        ("no-op plan", ("plan", "--detailed-exitcode")),
        ("status", ("status",)),
    ):
        run = _harness.run_measured(
            [sys.executable, "-m", "reconciler", "-C", str(root), *args],
            _harness.cli_env(emulator.base_url),
        )
        if run.exit_code != 0:
            raise RuntimeError(f"{name} exited {run.exit_code}:\n{run.stderr_tail}")
        lines.append(
            f"{name:<11} {run.seconds:6.2f} s  cpu {run.cpu_seconds:6.2f} s  "
            f"peak {_harness.mib(run.peak_kib):5.0f} MiB"
        )
    return lines


@contextlib.contextmanager
def _postgres_url() -> Iterator[str | None]:
    if find_bindir() is None:
        yield None
        return
    with run_postgres() as server:
        yield server.url()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--inner", action="store_true", help="only the in-process reads")
    parser.add_argument("--local-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    print(_harness.machine(), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp,
        contextlib.nullcontext(None) if args.local_only else _postgres_url() as url,
    ):
        scratch = Path(tmp)
        for n in args.sizes:
            settings = {"local": "state/reconciler.state.json"}
            if url is not None:
                settings["postgresql"] = (
                    f"{url}&workspace=reads{n}" if "?" in url else (f"{url}?workspace=reads{n}")
                )
            for kind, setting in settings.items():
                root = scratch / f"{kind}-{n}"
                write_project(root, n, parallelism=32)
                config = root / "reconciler.yaml"
                config.write_text(
                    config.read_text().replace(
                        "state: state/reconciler.state.json", f"state: {setting}"
                    )
                )
                first = write_settled_state(root)
                print(f"{kind:<10} N={n}: the first write of the state {first:.2f} s", flush=True)
                inner = inner_reads(root)
                unit = "read calls" if kind == "local" else "statements"
                print(
                    f"{kind:<10} N={n}: one cold read {inner['read s']:.2f} s (cpu "
                    f"{inner['read cpu s']:.2f} s, {inner['read requests']:.0f} {unit}); "
                    f"key digests {inner['key digests s']:.3f} s (cpu "
                    f"{inner['key digests cpu s']:.3f} s, {inner['key digests requests']:.0f} "
                    f"{unit}); a collection of the blobs that removes none {inner['gc s']:.2f} s "
                    f"(cpu {inner['gc cpu s']:.2f} s, {inner['gc requests']:.0f} {unit})",
                    flush=True,
                )
                if args.inner:
                    continue
                with _harness.emulator(scratch / f"emulator-{kind}-{n}") as emulator:
                    for line in cli_steps(root, emulator):
                        print(f"{kind:<10} N={n}: {line}", flush=True)


if __name__ == "__main__":
    main()
