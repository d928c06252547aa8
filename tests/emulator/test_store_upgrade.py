"""A data directory written by an earlier emulator opens: columns added since (the jobs' fault
seed) are added on open, and the jobs stored before read back with their defaults."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from reconciler.emulator.store import Store
from reconciler.emulator.vertex_store import VertexJob, VertexStore
from tests.emulator.conftest import batch_row


def _drop_column(database: Path, table: str, column: str) -> None:
    db = sqlite3.connect(database)
    try:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.commit()
    finally:
        db.close()


def test_a_batches_table_without_fault_seeds_gains_the_column_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    assert Store(tmp_path).insert_batch(batch_row(id="old"))
    _drop_column(tmp_path / "emulator.sqlite3", "batches", "fault_seed")

    store = Store(tmp_path)

    assert store.get_batch("old") == batch_row(id="old", fault_seed=0)
    assert store.insert_batch(batch_row(id="new", fault_seed=42))
    assert store.get_batch("new") == batch_row(id="new", fault_seed=42)


def test_a_vertex_table_without_fault_seeds_gains_the_column_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    job = VertexJob(
        id="1000000000000000001",
        parent="projects/p/locations/us-central1",
        display_name="old",
        model="publishers/google/models/gemini-2.5-flash",
        body={"inputConfig": {}},
        create_time=1000.0,
        job_seconds=1.0,
        pending_seconds=0.0,
        forced_end=None,
        state=None,
        end_time=None,
        success_count=0,
        failed_count=0,
        output_dir=None,
        error=None,
        request_error_rate=0.5,
        fault_seed=7,
    )
    VertexStore(tmp_path).insert(job)
    _drop_column(tmp_path / "vertex.sqlite3", "vertex_jobs", "fault_seed")

    store = VertexStore(tmp_path)

    assert store.get(job.parent, job.id) == replace(job, fault_seed=0)
    store.insert(replace(job, id="1000000000000000002"))
    assert store.get(job.parent, "1000000000000000002") == replace(job, id="1000000000000000002")
