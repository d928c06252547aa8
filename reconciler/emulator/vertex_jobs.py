"""Vertex AI batch prediction jobs: their rows, their lifecycle, and the work they do.

Like the Developer API's jobs (jobs.py), a job's state is derived from its row and the clock
when it is read (JOB_STATE_PENDING -> RUNNING -> SUCCEEDED), never advanced by a background
task, so an emulator that lives for one command behaves like a remote service. When a read
finds a job past its deadline, the job does its work: it reads every input JSONL from Cloud
Storage, answers each line with the deterministic fake model (model.py), writes
`predictions.jsonl` under `<outputUriPrefix>/prediction-model-<timestamp>/` (Vertex's layout),
and stores its end state and counts -- in one write transaction taken before the work, so two
processes reading the same job at once do not both run it.

Output lines follow Vertex's format for Gemini: the input line's own fields (the `request`,
and any other top-level field such as a `key`, which Vertex passes through), then `response`
or a non-empty `status` with the error, and `processed_time`.

Rows live in their own SQLite file beside the Developer API's (`vertex.sqlite3`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.emulator import model, vertex_bigquery, vertex_storage
from reconciler.emulator.database import sqlite_transaction
from reconciler.emulator.faults import request_fails
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
_ADDED_COLUMNS = (("fault_seed", "INTEGER NOT NULL DEFAULT 0"),)
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
        db = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(vertex_jobs)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in present:
                    db.execute(f"ALTER TABLE vertex_jobs ADD COLUMN {column} {kind}")
        finally:
            db.close()

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


def settle(store: VertexStore, job: VertexJob, now: float, services: Services) -> VertexJob:
    """The job as of `now`; a job that has just reached its end does its work first."""
    state, end = job.phase(now)
    if job.state is not None or state not in TERMINAL or end is None:
        return job
    with store.transaction(immediate=True) as db:
        current = store.get(job.parent, job.id, db)
        if current is None or current.state is not None:
            return current or job
        if state == SUCCEEDED:
            done = _run(store, current, end, services)
        else:
            done = _with(current, error="The batch prediction job failed: internal error.")
        store.end(done, FAILED if done.error else state, end, db)
        refreshed = store.get(job.parent, job.id, db)
    return refreshed or job


def _with(job: VertexJob, **changes: Any) -> VertexJob:
    values = {name: getattr(job, name) for name in job.__dataclass_fields__}
    values.update(changes)
    return VertexJob(**values)


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


@dataclass(frozen=True, slots=True)
class Services:
    """The Cloud Storage and BigQuery endpoints a job reads from and writes to (None: absent)."""

    storage: str | None
    bigquery: str | None


def _run(store: VertexStore, job: VertexJob, end: float, services: Services) -> VertexJob:
    """Answer every input line or row and write the predictions (a `predictions.jsonl` or rows
    of the destination table); the job with its counts, or with an error when its input or
    output cannot be reached."""
    table = bigquery_output(job.body)
    directory = table or output_directory(job)
    source_table = bigquery_input(job.body)
    if directory is None:
        return _with(job, error="The job has no output destination.")
    if (table or source_table) and services.bigquery is None:
        return _with(job, error="BigQuery is not configured for the emulator.")
    if (not table or not source_table) and services.storage is None:
        return _with(job, error="Cloud Storage is not configured for the emulator.")
    storage = services.storage
    success = failed = 0
    with tempfile.TemporaryDirectory(dir=store.tmp_dir) as scratch:
        cached: dict[str, bool] = {}

        def file_exists(uri: str) -> bool:
            # Media parts name gs:// objects; Vertex reads them when the job runs.
            if uri not in cached:
                cached[uri] = (
                    storage is not None
                    and uri.startswith("gs://")
                    and vertex_storage.exists(storage, uri)
                )
            return cached[uri]

        try:
            items = _inputs(job, Path(scratch), services)
            if items.count > job.max_requests:
                return _with(
                    job,
                    error=f"The batch prediction job has {items.count:,} requests, more than "
                    f"the {job.max_requests:,} a job may have.",
                )
            lines = (_answer(job, item, file_exists, end) for item in items)
            if table is not None:
                assert services.bigquery is not None
                success, failed = _write_table(services.bigquery, table, source_table, lines)
            else:
                assert storage is not None
                success, failed = _write_predictions(storage, directory, Path(scratch), lines)
        except vertex_storage.StorageError as exc:
            return _with(job, error=f"Cloud Storage: {exc}")
        except vertex_bigquery.BigQueryError as exc:
            return _with(job, error=f"BigQuery: {exc}")
        except ValueError as exc:
            return _with(job, error=f"Invalid input: {exc}")
    return _with(job, success_count=success, failed_count=failed, output_dir=directory)


@dataclass(slots=True)
class _Inputs:
    """A job's input items (parsed rows of a source table, or raw lines of JSONL files, read
    from the copies in scratch) and how many there are, known before any is answered."""

    count: int
    items: Iterator[dict[str, Any] | str]

    def __iter__(self) -> Iterator[dict[str, Any] | str]:
        return self.items


def _inputs(job: VertexJob, scratch: Path, services: Services) -> _Inputs:
    table = bigquery_input(job.body)
    if table is not None:
        assert services.bigquery is not None
        base = services.bigquery
        return _Inputs(vertex_bigquery.row_count(base, table), vertex_bigquery.rows(base, table))
    assert services.storage is not None
    files: list[Path] = []
    count = 0
    for index, uri in enumerate(gcs_inputs(job.body)):
        source = scratch / f"input-{index}.jsonl"
        vertex_storage.download(services.storage, uri, source)
        files.append(source)
        with source.open(encoding="utf-8") as lines:
            count += sum(1 for raw in lines if raw.strip())
    return _Inputs(count, _lines(files))


def _lines(files: list[Path]) -> Iterator[str]:
    for source in files:
        with source.open(encoding="utf-8") as lines:
            for raw in lines:
                if raw.strip():
                    yield raw


def _write_predictions(
    storage: str, directory: str, scratch: Path, lines: Iterator[dict[str, Any]]
) -> tuple[int, int]:
    success = failed = 0
    out_path = scratch / "predictions.jsonl"
    with out_path.open("w", encoding="utf-8") as out:
        for line in lines:
            if line.get("status"):
                failed += 1
            else:
                success += 1
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    # Not application/jsonl: gcp-storage-emulator parses any application/json* media
    # upload body as one JSON document.
    vertex_storage.upload(
        storage, f"{directory}/predictions.jsonl", out_path, "application/octet-stream"
    )
    return success, failed


_TABLE_BATCH = 500


def _write_table(
    base: str, table: str, source_table: str | None, lines: Iterator[dict[str, Any]]
) -> tuple[int, int]:
    """Write every answered line to `table`, which the job creates (with the source's columns
    and the result columns; one that exists ends the job FAILED, as on Vertex), in batches."""
    success = failed = 0
    columns: list[dict[str, Any]] | None = None
    if source_table is not None:
        columns = vertex_bigquery.schema(base, source_table)
    kinds: dict[str, str] = {}
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        vertex_bigquery.append(base, table, batch, kinds)
        batch.clear()

    for line in lines:
        if columns is None:  # a JSONL source: `request`, then its first line's other fields
            columns = [vertex_bigquery.column_for("request", None)] + [
                vertex_bigquery.column_for(name, value)
                for name, value in line.items()
                if name not in ("request", "response", "status", "processed_time")
            ]
        if not kinds:
            every = [*columns, *vertex_bigquery.RESULT_COLUMNS]
            vertex_bigquery.create_table(base, table, every)
            kinds = {column["name"]: column.get("type", "STRING") for column in every}
        if line.get("status"):
            failed += 1
        else:
            success += 1
        batch.append({name: _cell(kinds[name], line.get(name)) for name in kinds})
        if len(batch) >= _TABLE_BATCH:
            flush()
    if batch:
        flush()
    return success, failed


def _cell(kind: str, value: Any) -> Any:
    """A value for a column of `kind`: passed-through scalars as text in STRING columns."""
    if value is None or kind == "JSON":
        return value
    if kind == "STRING" and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return value


def _answer(
    job: VertexJob, item: dict[str, Any] | str, file_exists: model.FileExists, end: float
) -> dict[str, Any]:
    """One output line: the input's fields, then `response` or a `status` message."""
    raw = item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            return {"status": f"Invalid JSON: {exc}", "processed_time": timestamp(end)}
    if not isinstance(item, dict) or "request" not in item:
        return {"status": "Each line needs a `request` object.", "processed_time": timestamp(end)}
    line: dict[str, Any] = dict(item)
    request = item["request"]
    if isinstance(request, str):  # a STRING column holding the JSON request
        try:
            request = json.loads(request)
        except json.JSONDecodeError:
            request = None
    model_id = "models/" + job.model.rsplit("/", 1)[-1]
    try:
        if not isinstance(request, dict):
            raise model.RequestError(
                model.INVALID_ARGUMENT, "The `request` column is not a JSON object."
            )
        if request_fails(job.fault_seed, raw, job.request_error_rate):
            raise model.RequestError(model.INTERNAL, "Internal error encountered.")
        line["response"] = model.generate(model_id, request, file_exists)
        line["status"] = ""
    except model.RequestError as error:
        line["status"] = error.message
    line["processed_time"] = timestamp(end)
    return line
