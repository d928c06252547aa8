"""Wire shapes of the Gemini Developer API: File and Operation JSON, error bodies, timestamps.

Everything here follows shared/gemini-batch-protocol.md §2.2–2.3 and §4: camelCase keys, int64
counters as JSON strings with zero counters omitted, the batch wrapped in a long-running Operation
(`name` + `metadata` + `done` + `response`), BATCH_STATE_* names, and errors as
`{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import JSONResponse

from reconciler.emulator import jobs
from reconciler.emulator.store import BatchRow, FileRow

_TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1main."

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def error(
    code: int, message: str, status: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The service's error body; the SDK maps 4xx to ClientError and 5xx to ServerError."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "status": status or STATUS_BY_CODE.get(code, "UNKNOWN"),
        }
    }
    return JSONResponse(body, status_code=code, headers=headers)


def timestamp(seconds: float) -> str:
    """RFC 3339 UTC with microseconds and `Z`, as the service writes them."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_json(file: FileRow, base_url: str, version: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"files/{file.id}",
        "mimeType": file.mime_type,
        "sizeBytes": str(file.size_bytes),  # int64 → string on the real wire
        "createTime": timestamp(file.create_time),
        "updateTime": timestamp(file.create_time),
        "expirationTime": timestamp(file.expire_time),
        "sha256Hash": file.sha256,
        "uri": f"{base_url}/{version}/files/{file.id}",
        "state": "ACTIVE",
        "source": file.source,
    }
    if file.display_name:
        body["displayName"] = file.display_name
    if file.source == "GENERATED":
        # Without downloadUri the SDK refuses files.download(file=<File>) locally (pitfall 16);
        # the real value has the /download/v1beta form (pitfall 21).
        body["downloadUri"] = f"{base_url}/download/v1beta/files/{file.id}:download?alt=media"
    return body


def _stats(batch: BatchRow, state: str) -> dict[str, str]:
    if state == jobs.SUCCEEDED:
        counts = {
            "requestCount": batch.request_count,
            "successfulRequestCount": batch.success_count,
            "failedRequestCount": batch.failed_count,
        }
    elif state in (jobs.PENDING, jobs.RUNNING):
        counts = {"requestCount": batch.request_count, "pendingRequestCount": batch.request_count}
    else:
        counts = {"requestCount": batch.request_count}
    # proto3 JSON: int64 as strings, zero counters omitted (pitfall 22).
    return {name: str(value) for name, value in counts.items() if value}


def operation_json(
    batch: BatchRow,
    now: float,
    inline_responses: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The Operation wrapper the SDK parses (it reads only `name` and `metadata`, pitfall 9).

    `inline_responses` None means "a list item": like the service, lists carry no inline output.
    """
    phase = jobs.derive(batch, now)
    embed = batch.kind == "embed"
    kind = "EmbedContentBatch" if embed else "GenerateContentBatch"
    if batch.inline:
        input_config: dict[str, Any] = {"requests": {}}
    else:
        input_config = {"fileName": f"files/{batch.input_file}"}
    update = phase.end_time if phase.end_time is not None else now
    metadata: dict[str, Any] = {
        "@type": _TYPE_PREFIX + kind,
        "name": f"batches/{batch.id}",
        "model": batch.model,
        "state": f"BATCH_STATE_{phase.state}",
        "createTime": timestamp(batch.create_time),
        "updateTime": timestamp(update),
        "inputConfig": input_config,
        "batchStats": _stats(batch, phase.state),
    }
    if batch.display_name is not None:
        metadata["displayName"] = batch.display_name
    operation: dict[str, Any] = {"name": f"batches/{batch.id}", "metadata": metadata}
    if phase.state in jobs.TERMINAL:
        metadata["endTime"] = timestamp(update)
        operation["done"] = True
    output: dict[str, Any] | None = None
    if batch.state == jobs.SUCCEEDED:
        if batch.output_file is not None:
            output = {"responsesFile": f"files/{batch.output_file}"}
        elif inline_responses is not None:
            # Double nesting, exactly as the SDK reads it (pitfall 10).
            field = "inlinedEmbedContentResponses" if embed else "inlinedResponses"
            output = {field: {"inlinedResponses": inline_responses}}
    if output is not None:
        metadata["output"] = output
        operation["response"] = {"@type": _TYPE_PREFIX + kind + "Output", **output}
    return operation
