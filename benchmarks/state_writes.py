"""One state write at 1,000 and 10,000 resources, local file and PostgreSQL; bytes per resource.

    .venv/bin/python -m benchmarks.state_writes               # 1,000 and 10,000 resources
    .venv/bin/python -m benchmarks.state_writes --sizes 5000  # other sizes

Apply saves the state after every step that changes the world (group commits join concurrent
steps), so the time of one write that changes one record is the per-step overhead a large apply
pays. Each write here is one apply step: one resource's job moves on, under the state lock as in apply (locally the write
then appends to the journal; a write without the lock, which rewrites the whole file, is
measured beside it). The resources are
settled single-job file-source resources shaped like the ones a real `apply --wait` records (one
attempt, its input, collected results, key digests). PostgreSQL runs on a throwaway cluster as
the integration tests start one; without the server binaries it is skipped (and said so).
Each write's CPU time is printed beside its wall time (on a loaded machine the CPU time is the
figure to compare), and so is the first write of every record, which stores every record's
details blob (format 6).

The issue's figures before this work (the whole document re-sorted, re-encoded and rewritten
per write): 68 ms at 5,000 and 136 ms at 10,000 resources locally, 92 / 187 ms on PostgreSQL,
2.4 KB per resource.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.clock import SystemClock
from reconciler.state import codec
from reconciler.state.backend import LockInfo, StateBackend, new_lineage
from reconciler.state.document import (
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
    TokenUsage,
)
from reconciler.state.registry import open_backend
from tests.fixtures.postgres import find_bindir, run_postgres
from tests.integration.state.helpers import project_for

T0 = datetime(2026, 12, 2, 18, 32, 46, 164107, tzinfo=UTC)
WRITES = 40


def settled_record(i: int) -> ResourceRecord:
    """A file-source resource whose one job succeeded and whose results were collected."""
    name = f"eval-{i:05d}"
    rng = random.Random(i)
    spec, source, results, digests = (f"{rng.getrandbits(256):064x}" for _ in range(4))
    job = f"batches/{rng.getrandbits(180):036x}"[:44]
    attempt = JobAttempt(
        number=1,
        tag=f"[rc:10452602/{name}@{spec[:12]}:1]",
        spec_hash=spec,
        request_count=3,
        job_name=job,
        input_file=f"files/{i:012x}",
        state=JobState.SUCCEEDED,
        intent_at=T0,
        created_at=T0 + timedelta(microseconds=133186),
        updated_at=T0 + timedelta(microseconds=633186),
        ended_at=T0 + timedelta(microseconds=633186),
        output_file=f"files/batch-{job.removeprefix('batches/')}",
        endpoint="gemini",
        usage=TokenUsage(
            prompt=129, output=195, thinking=803, responses=3, model="gemini-2.5-flash"
        ),
        cost_usd=0.00152925,
        collected_at=T0 + timedelta(seconds=1),
    )
    return ResourceRecord(
        name=name,
        spec_hash=spec,
        replacing={
            "config": {},
            "media": {},
            "model": "gemini-2.5-flash",
            "source": {"inline": False, "requests": 3, "sha256": source},
            "task": "generate",
        },
        in_place={
            "labels": {},
            "output": f"results/{name}.jsonl",
            "policy": {
                "max_attempts": 3,
                "rerun": "changed",
                "resubmit": ["FAILED", "EXPIRED"],
                "retry_failed_requests": 0,
            },
            "shards": {"max_bytes": "1GiB", "max_requests": 100000},
        },
        input=InputRecord(
            sha256=source,
            bytes=231,
            request_count=3,
            file_name=f"files/{i:012x}",
            uploaded_at=T0,
            expires_at=T0 + timedelta(days=2),
        ),
        attempts=(attempt,),
        results=ResultsRecord(
            location=f"results/{name}.jsonl",
            sha256=results,
            bytes=1411,
            succeeded=3,
            failed=0,
            collected_at=T0 + timedelta(seconds=1),
            from_attempts=(1,),
        ),
        key_digests_ref=digests,
    )


def measure(backend: StateBackend, resources: int, *, locked: bool = True) -> dict[str, float]:
    """Median and spread of one changing write, and the stored document's bytes per resource.

    `locked`: the writes run under the state lock, as apply's do (the local backend then
    journals them); unlocked, a local write rewrites the whole file (the path every write took
    before the journal, now with cached record lines)."""
    state = backend.read()
    for i in range(resources):
        state = state.with_resource(settled_record(i))
    began = time.perf_counter()
    state = backend.write(state, state.serial)  # every record (and its details blob) is new
    first = time.perf_counter() - began
    rng = random.Random(0)
    times: list[float] = []
    cpu: list[float] = []
    with backend.lock(LockInfo.new("bench")) if locked else contextlib.nullcontext():
        for step in range(WRITES):
            name = f"eval-{rng.randrange(resources):05d}"
            record = state.resources[name]
            last = record.attempts[-1].model_copy(
                update={"updated_at": T0 + timedelta(seconds=step + 1)}
            )
            changed = state.with_resource(record.model_copy(update={"attempts": (last,)}))
            began, began_cpu = time.perf_counter(), time.process_time()
            state = backend.write(changed, state.serial)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
    return {
        "first_s": first,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "cpu_ms": statistics.median(cpu),
        "bytes_per_resource": len(codec.encode(state)) / resources,
    }


def bytes_per_settled_resource() -> dict[str, float]:
    """The committed document's bytes per settled resource, and its record line alone."""
    state = State(lineage=new_lineage())
    for i in range(1000):
        state = state.with_resource(settled_record(i))
    empty = len(codec.encode(State(lineage=state.lineage)))
    line = len(codec.encode_record(state.resources["eval-00000"]))
    return {"document": (len(codec.encode(state)) - empty) / 1000, "record": float(line)}


@contextlib.contextmanager
def _postgres_url() -> Iterator[str | None]:
    if find_bindir() is None:
        yield None
        return
    with run_postgres() as server:
        yield server.url()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.state_writes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    args = parser.parse_args()
    clock = SystemClock()
    sizes = bytes_per_settled_resource()
    print(
        f"settled single-job resource: {sizes['document']:.0f} B in the document "
        f"({sizes['record']:.0f} B its record line)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp, _postgres_url() as url:
        root = Path(tmp)
        for n in args.sizes:
            local = open_backend(
                project_for(root, f"state/s{n}.state.json"),
                clock=clock,
                lineage_factory=new_lineage,
            )
            _print("local file", n, measure(local, n))
            local.close()
            rewrite = open_backend(
                project_for(root, f"state/r{n}.state.json"),
                clock=clock,
                lineage_factory=new_lineage,
            )
            _print("local file, whole-file rewrite (no lock)", n, measure(rewrite, n, locked=False))
            rewrite.close()
            if url is None:
                print("postgresql: skipped (no initdb/pg_ctl on this machine)")
                continue
            pg = open_backend(project_for(root, f"{url}?workspace=bench{n}"), clock=clock)
            _print("postgresql", n, measure(pg, n))
            pg.close()


def _print(kind: str, n: int, figures: dict[str, float]) -> None:
    print(
        f"{kind} {n:6d} resources: one write {figures['median_ms']:6.1f} ms median "
        f"(min {figures['min_ms']:.1f}, max {figures['max_ms']:.1f}, {WRITES} writes; "
        f"CPU {figures['cpu_ms']:.1f} ms), "
        f"{figures['bytes_per_resource']:.0f} B/resource; the first write of all of them "
        f"{figures['first_s']:.2f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
