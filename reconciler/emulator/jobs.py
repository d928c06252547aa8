"""Batch job lifecycle: the state derived from stored timestamps, and lazy, atomic completion.

A job's state is never advanced by a background task: it is computed from its row and the clock
whenever the job is read (PENDING → RUNNING → end), so an emulator that lives for one command, or
is restarted, still behaves like a remote service. When a read finds a job past its deadline the
outputs are generated (streaming, line by line, so a 1 GiB input never sits in memory) into a
temporary blob, and state + output are committed in one transaction (store.end_batch).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.emulator import model
from reconciler.emulator.faults import request_fails
from reconciler.emulator.rows import BatchRow, FileRow
from reconciler.emulator.settings import EmulatorSettings
from reconciler.emulator.store import Store

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})

_INTERNAL_MESSAGE = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"


@dataclass(frozen=True, slots=True)
class Phase:
    state: str
    end_time: float | None


def lifetime_seconds(settings: EmulatorSettings) -> float:
    """Real seconds from create to the job's end, stored on its row: the hold in the queue
    (`pending_hold_seconds`), then `job_seconds` of its own."""
    return settings.pending_hold_seconds + settings.job_seconds


def pending_seconds(settings: EmulatorSettings) -> float:
    """Real seconds a new job stays PENDING: the hold, then its share of `job_seconds`."""
    return settings.pending_hold_seconds + settings.job_seconds * settings.pending_fraction


def derive(batch: BatchRow, now: float) -> Phase:
    """The state a job has at `now`, from its row alone (no I/O)."""
    if batch.state is not None:
        return Phase(batch.state, batch.end_time)
    deadline = batch.create_time + batch.job_seconds
    expiry = batch.create_time + batch.expire_after
    if expiry < deadline and now >= expiry:
        # Pending/running longer than the (scaled) 48 h: the service gives up on the job.
        return Phase(EXPIRED, expiry)
    if now >= deadline:
        return Phase(batch.forced_end or SUCCEEDED, deadline)
    if now < batch.create_time + batch.pending_seconds:
        return Phase(PENDING, None)
    return Phase(RUNNING, None)


def requests_done(batch: BatchRow, now: float) -> int:
    """Requests a RUNNING job has worked through at `now`: an even pace from the end of its
    pending time to its deadline, as the service's `batchStats` advance while a job runs."""
    started = batch.create_time + batch.pending_seconds
    span = batch.job_seconds - batch.pending_seconds
    if span <= 0:
        return 0
    share = min(1.0, max(0.0, (now - started) / span))
    return min(batch.request_count, int(batch.request_count * share))


def settle(store: Store, batch: BatchRow, now: float) -> BatchRow:
    """Return the job as of `now`, storing its end state (and outputs) if it just ended."""
    phase = derive(batch, now)
    if batch.state is not None or phase.state not in TERMINAL or phase.end_time is None:
        return batch
    end = phase.end_time
    if phase.state != SUCCEEDED:
        store.end_batch(batch.id, phase.state, end)
    elif batch.inline:
        _complete_inline(store, batch, end)
    else:
        _complete_file(store, batch, end)
    refreshed = store.get_batch(batch.id)
    return refreshed if refreshed is not None else batch


def _answer(
    store: Store, batch: BatchRow, request: Any, key: str, cache: dict[str, bool], end: float
) -> dict[str, Any]:
    """`{"response": ...}` or `{"error": ...}` for one request."""

    def file_exists(file_id: str) -> bool:
        # A file still PROCESSING when the job runs is as good as missing to the service.
        if file_id not in cache:
            file = store.get_file(file_id)
            cache[file_id] = file is not None and file.active_time <= end
        return cache[file_id]

    try:
        if request_fails(batch.fault_seed, key, batch.request_error_rate):
            raise model.RequestError(model.INTERNAL, _INTERNAL_MESSAGE)
        if batch.kind == "embed":
            return {"response": model.embed(batch.model, request, file_exists)}
        return {"response": model.generate(batch.model, request, file_exists)}
    except model.RequestError as error:
        return {"error": error.to_status()}


def _complete_file(store: Store, batch: BatchRow, end: float) -> None:
    """Stream the input JSONL into a results JSONL, one output line per non-blank input line."""
    source = store.input_snapshot(batch.id)
    temp = store.temp_path()
    success = failed = size = 0
    sha = hashlib.sha256()
    cache: dict[str, bool] = {}
    with temp.open("wb") as out:
        lines = source.open("rb") if source.exists() else None
        try:
            for number, raw in enumerate(lines or (), start=1):
                if not raw.strip():
                    continue
                line = _file_line(store, batch, raw, number, cache, end)
                success, failed = (
                    (success + 1, failed) if "response" in line else (success, failed + 1)
                )
                data = (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
                out.write(data)
                sha.update(data)
                size += len(data)
        finally:
            if lines is not None:
                lines.close()
    # As the service: `batch-<job id>`, 42 characters, which files.delete refuses (python-genai
    # #1759). Lenient (`undeletable_result_files=False`): an id within the 40 characters it
    # deletes, as a service that fixed that would name it, so clients' deletes can succeed.
    output_id = f"batch-{batch.id}" if batch.undeletable_results else f"batch-{batch.id[:34]}"
    output = FileRow(
        id=output_id,
        display_name=output_id,
        mime_type="application/jsonl",
        size_bytes=size,
        sha256=base64.b64encode(sha.digest()).decode(),
        create_time=end,
        expire_time=end + batch.file_ttl,
        source="GENERATED",
        available_time=end + batch.results_delay,
        undeletable=batch.undeletable_results,
    )
    if store.end_batch(batch.id, SUCCEEDED, end, success, failed, output, temp):
        source.unlink(missing_ok=True)
    else:
        temp.unlink(missing_ok=True)


def _file_line(
    store: Store, batch: BatchRow, raw: bytes, number: int, cache: dict[str, bool], end: float
) -> dict[str, Any]:
    # Lines are checked when the job runs, not at create: a malformed line becomes a
    # per-request error (gRPC 3) and the job still SUCCEEDS, as the service does.
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # also too deep, or an integer too long
        return {
            "error": {
                "code": model.INVALID_ARGUMENT,
                "message": f"line {number}: invalid JSON: {exc}",
            }
        }
    if not isinstance(item, dict):
        return {
            "error": {
                "code": model.INVALID_ARGUMENT,
                "message": f"line {number}: expected an object",
            }
        }
    key = item.get("key")
    key_text = key if isinstance(key, str) else (None if key is None else json.dumps(key))
    if "request" not in item:
        result: dict[str, Any] = {
            "error": {
                "code": model.INVALID_ARGUMENT,
                "message": f"line {number}: request is required",
            }
        }
    else:
        result = _answer(store, batch, item["request"], key_text or str(number), cache, end)
    # Real lines serialise `response`/`error` before `key`; `key` is echoed verbatim.
    if key_text is not None:
        result["key"] = key_text
    return result


def _complete_inline(store: Store, batch: BatchRow, end: float) -> None:
    requests_blob = store.inline_blob(batch.id, "requests")
    with requests_blob.open("rb") as handle:
        items: list[dict[str, Any]] = json.load(handle)
    cache: dict[str, bool] = {}
    responses: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        metadata = item.get("metadata")
        key = metadata.get("key") if isinstance(metadata, dict) else None
        answer = _answer(
            store,
            batch,
            item.get("request"),
            str(key) if key is not None else str(index),
            cache,
            end,
        )
        if isinstance(metadata, dict):
            answer["metadata"] = metadata
        responses.append(answer)
    if batch.shuffle:
        # Quirk (python-genai #1909/#1886): order lost and `metadata` missing.
        random.Random(batch.fault_seed).shuffle(responses)
        for answer in responses:
            answer.pop("metadata", None)
    success = sum(1 for r in responses if "response" in r)
    temp = store.temp_path()
    temp.write_text(json.dumps(responses, separators=(",", ":")))
    target = store.inline_blob(batch.id, "responses")
    # The responses blob only becomes visible through the row's end state, so writing it first
    # (under its final name) and committing the state second keeps both atomic for readers.
    Path(temp).replace(target)
    store.end_batch(batch.id, SUCCEEDED, end, success, len(responses) - success)


def inline_responses(store: Store, batch: BatchRow) -> list[dict[str, Any]]:
    blob = store.inline_blob(batch.id, "responses")
    if batch.state != SUCCEEDED or not blob.exists():
        return []
    with blob.open("rb") as handle:
        loaded: list[dict[str, Any]] = json.load(handle)
    return loaded
