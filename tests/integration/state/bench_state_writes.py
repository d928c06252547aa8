"""Benchmark: milliseconds per state write with 1,000 resources, local file and PostgreSQL.

Apply writes the state after every step that changes the world, so this is the per-step
overhead. Run: `.venv/bin/python -m tests.integration.state.bench_state_writes` (starts a
throwaway PostgreSQL cluster like the test fixture does). Not a timed test: it prints figures.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
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
)
from reconciler.state.registry import open_backend
from tests.fixtures.postgres import run_postgres
from tests.integration.state.helpers import project_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RESOURCES = 1000
WRITES = 100


def realistic_record(i: int) -> ResourceRecord:
    """A resource that went through two attempts and has collected results."""
    name = f"eval-{i:04d}"
    spec = f"{i:064x}"
    attempts = tuple(
        JobAttempt(
            number=n,
            tag=f"[rc:{name}@{spec[:12]}:{n}]",
            spec_hash=spec,
            job_name=f"batches/{name}-{n}",
            input_file=f"files/{name}",
            state=JobState.FAILED if n == 1 else JobState.SUCCEEDED,
            intent_at=T0,
            created_at=T0,
            updated_at=T0 + timedelta(minutes=n),
            ended_at=T0 + timedelta(minutes=10 * n),
            error="quota exceeded" if n == 1 else None,
            output_file=f"files/batch-{name}-{n}",
        )
        for n in (1, 2)
    )
    return ResourceRecord(
        name=name,
        spec_hash=spec,
        replacing={"model": "gemini-3-flash-preview", "task": "generate", "source_sha256": spec},
        in_place={"output": f"results/{name}.jsonl", "labels": {"team": "evals"}},
        input=InputRecord(sha256=spec, bytes=123456, request_count=500, file_name=f"files/{name}"),
        attempts=attempts,
        results=ResultsRecord(
            location=f"results/{name}.jsonl",
            sha256=spec,
            bytes=654321,
            succeeded=498,
            failed=2,
            collected_at=T0,
            from_attempts=(2,),
        ),
    )


def measure(backend: StateBackend) -> tuple[float, float, float]:
    """(median ms per changing write, median ms per unchanged write, document KiB)."""
    state = backend.read()
    for i in range(RESOURCES):
        state = state.with_resource(realistic_record(i))
    state = backend.write(state, state.serial)
    rng = random.Random(0)
    changed: list[float] = []
    unchanged: list[float] = []
    with backend.lock(LockInfo.new("bench")):
        for step in range(WRITES):
            # One apply step: one resource's attempt moves on.
            name = f"eval-{rng.randrange(RESOURCES):04d}"
            record = state.resources[name]
            last = record.attempts[-1].model_copy(
                update={"updated_at": T0 + timedelta(seconds=step)}
            )
            state_next = state.with_resource(
                record.model_copy(update={"attempts": (*record.attempts[:-1], last)})
            )
            t = time.perf_counter()
            state = backend.write(state_next, state.serial)
            changed.append(time.perf_counter() - t)
            t = time.perf_counter()
            backend.write(state, state.serial)
            unchanged.append(time.perf_counter() - t)
    size = len(codec.encode(state)) / 1024
    return statistics.median(changed) * 1000, statistics.median(unchanged) * 1000, size


def main() -> None:
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = open_backend(
            project_for(root, "state/bench.state.json"), clock=clock, lineage_factory=new_lineage
        )
        ms, same, kib = measure(local)
        print(
            f"local file : {ms:6.1f} ms/write (changed), {same:6.1f} ms/write (unchanged), {kib:.0f} KiB document, {RESOURCES} resources"
        )
        with run_postgres() as server:
            pg = open_backend(project_for(root, server.url(workspace="bench")), clock=clock)
            ms, same, kib = measure(pg)
            pg.close()
        print(
            f"postgresql : {ms:6.1f} ms/write (changed), {same:6.1f} ms/write (unchanged), {kib:.0f} KiB document, {RESOURCES} resources"
        )


if __name__ == "__main__":
    main()
