"""Vertex AI batch prediction jobs: the work a job does when it ends.

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

The rows, and what a job's create request names, are `vertex_store`'s.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.emulator import model, vertex_bigquery, vertex_storage
from reconciler.emulator.faults import request_fails
from reconciler.emulator.vertex_store import (
    FAILED,
    SUCCEEDED,
    TERMINAL,
    VertexJob,
    VertexStore,
    bigquery_input,
    bigquery_output,
    gcs_inputs,
    output_directory,
)
from reconciler.emulator.wire import timestamp


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
