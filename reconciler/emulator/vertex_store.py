"""Vertex AI batch prediction jobs as rows: the job value (its lifecycle phase derived from the
row and the clock), what its stored create request names (sources, destinations), and the
store of one data directory, a SQLite file of its own beside the Developer API's
(`vertex.sqlite3`)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.emulator.database import create_database, sqlite_transaction
from reconciler.emulator.wire import timestamp

PENDING = "JOB_STATE_PENDING"
RUNNING = "JOB_STATE_RUNNING"
SUCCEEDED = "JOB_STATE_SUCCEEDED"
FAILED = "JOB_STATE_FAILED"
CANCELLED = "JOB_STATE_CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vertex_jobs (
    id TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    display_name TEXT,
    model TEXT NOT NULL,
    body TEXT NOT NULL,
    create_time REAL NOT NULL,
    job_seconds REAL NOT NULL,
    pending_seconds REAL NOT NULL,
    forced_end TEXT,
    state TEXT,
    end_time REAL,
    success_count INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0,
    output_dir TEXT,
    error TEXT,
    request_error_rate REAL NOT NULL DEFAULT 0,
    fault_seed INTEGER NOT NULL DEFAULT 0
);
"""
_ADDED_COLUMNS = (("vertex_jobs", "fault_seed", "INTEGER NOT NULL DEFAULT 0"),)
"""Columns later releases added: a data dir written before them gains them on open."""
_COLUMNS = (
    "id, parent, display_name, model, body, create_time, job_seconds, pending_seconds, "
    "forced_end, state, end_time, success_count, failed_count, output_dir, error, "
    "request_error_rate, fault_seed"
)


MAX_REQUESTS_KEY = "_maxRequests"
DEFAULT_MAX_REQUESTS = 200_000


@dataclass(frozen=True, slots=True)
class VertexJob:
    id: str
    parent: str
    """`projects/{project}/locations/{location}`"""
    display_name: str | None
    model: str
    """`publishers/google/models/{id}`"""
    body: dict[str, Any]
    """The create request's inputConfig, outputConfig and labels, as sent."""
    create_time: float
    job_seconds: float
    pending_seconds: float
    forced_end: str | None
    state: str | None
    """Stored end state; None while the state is derived from the clock."""
    end_time: float | None
    success_count: int
    failed_count: int
    output_dir: str | None
    error: str | None
    request_error_rate: float
    fault_seed: int = 0
    """Hashed with each line to decide its per-request fault (`faults.job_seed`): never the
    random id, so a seeded emulator fails the same lines on every run."""

    @property
    def name(self) -> str:
        return f"{self.parent}/batchPredictionJobs/{self.id}"

    @property
    def max_requests(self) -> int:
        """The requests this job may have (`vertex_max_requests` when it was created, kept in
        its stored body under a key no answer carries)."""
        return int(self.body.get(MAX_REQUESTS_KEY, DEFAULT_MAX_REQUESTS))

    def phase(self, now: float) -> tuple[str, float | None]:
        """(state, end time) at `now`, from the row alone."""
        if self.state is not None:
            return self.state, self.end_time
        deadline = self.create_time + self.job_seconds
        if now >= deadline:
            return self.forced_end or SUCCEEDED, deadline
        if now < self.create_time + self.pending_seconds:
            return PENDING, None
        return RUNNING, None


def _row(values: tuple[Any, ...]) -> VertexJob:
    (ident, parent, display, model_name, body, created, seconds, pending, forced, state, end) = (
        values[:11]
    )
    success, failed, output_dir, error, error_rate, fault_seed = values[11:]
    return VertexJob(
        ident,
        parent,
        display,
        model_name,
        json.loads(body),
        created,
        seconds,
        pending,
        forced,
        state,
        end,
        success,
        failed,
        output_dir,
        error,
        error_rate,
        fault_seed,
    )


class VertexStore:
    """The Vertex jobs of one emulator data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "vertex.sqlite3"
        self.tmp_dir = data_dir / "blobs" / "vertex-tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        create_database(self._path, _SCHEMA, _ADDED_COLUMNS)

    def transaction(
        self, immediate: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self._path, immediate=immediate)

    def insert(self, job: VertexJob) -> None:
        with self.transaction(immediate=True) as db:
            db.execute(
                f"INSERT INTO vertex_jobs ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (
                    job.id,
                    job.parent,
                    job.display_name,
                    job.model,
                    json.dumps(job.body),
                    job.create_time,
                    job.job_seconds,
                    job.pending_seconds,
                    job.forced_end,
                    job.state,
                    job.end_time,
                    job.success_count,
                    job.failed_count,
                    job.output_dir,
                    job.error,
                    job.request_error_rate,
                    job.fault_seed,
                ),
            )

    def get(
        self, parent: str, ident: str, db: sqlite3.Connection | None = None
    ) -> VertexJob | None:
        query = f"SELECT {_COLUMNS} FROM vertex_jobs WHERE parent = ? AND id = ?"
        if db is not None:
            found = db.execute(query, (parent, ident)).fetchone()
        else:
            with self.transaction() as own:
                found = own.execute(query, (parent, ident)).fetchone()
        return None if found is None else _row(found)

    def all(self, parent: str) -> list[VertexJob]:
        """Every job of `parent`, newest first (Vertex lists by create time, descending)."""
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM vertex_jobs WHERE parent = ? "
                "ORDER BY create_time DESC, id DESC",
                (parent,),
            ).fetchall()
        return [_row(row) for row in rows]

    def end(self, job: VertexJob, state: str, end: float, db: sqlite3.Connection) -> None:
        db.execute(
            "UPDATE vertex_jobs SET state = ?, end_time = ?, success_count = ?, "
            "failed_count = ?, output_dir = ?, error = ? WHERE id = ?",
            (state, end, job.success_count, job.failed_count, job.output_dir, job.error, job.id),
        )

    def delete(self, job: VertexJob) -> None:
        with self.transaction(immediate=True) as db:
            db.execute("DELETE FROM vertex_jobs WHERE id = ?", (job.id,))


def gcs_inputs(body: dict[str, Any]) -> list[str]:
    source = (body.get("inputConfig") or {}).get("gcsSource") or {}
    uris = source.get("uris") or []
    return [uris] if isinstance(uris, str) else [str(uri) for uri in uris]


def bigquery_input(body: dict[str, Any]) -> str | None:
    """The source table's `bq://` URI (`inputConfig.bigquerySource.inputUri`), if any."""
    source = (body.get("inputConfig") or {}).get("bigquerySource") or {}
    uri = source.get("inputUri")
    return str(uri) if uri else None


def gcs_output_prefix(body: dict[str, Any]) -> str | None:
    destination = (body.get("outputConfig") or {}).get("gcsDestination") or {}
    prefix = destination.get("outputUriPrefix")
    return str(prefix).rstrip("/") if prefix else None


def bigquery_output(body: dict[str, Any]) -> str | None:
    """The destination table's `bq://` URI (`outputConfig.bigqueryDestination.outputUri`)."""
    destination = (body.get("outputConfig") or {}).get("bigqueryDestination") or {}
    uri = destination.get("outputUri")
    return str(uri) if uri else None


def output_directory(job: VertexJob) -> str | None:
    """Where the job writes: `<prefix>/prediction-model-<create time>` (Vertex's naming)."""
    prefix = gcs_output_prefix(job.body)
    if prefix is None:
        return None
    stamp = timestamp(job.create_time).replace(".", "_")
    return f"{prefix}/prediction-model-{stamp}"
