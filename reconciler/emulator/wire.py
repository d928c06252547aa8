"""Wire shapes of the Gemini Developer API: File and Operation JSON, error bodies, timestamps.

Everything here follows shared/gemini-batch-protocol.md §2.2–2.3 and §4: camelCase keys, int64
counters as JSON strings with zero counters omitted, the batch wrapped in a long-running Operation
(`name` + `metadata` + `done` + `response`), BATCH_STATE_* names, and errors as
`{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

from reconciler.emulator import jobs
from reconciler.emulator.rows import BatchRow, FileRow

_TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1main."
_RPC = "type.googleapis.com/google.rpc."
PUBLIC_HOST = "https://generativelanguage.googleapis.com"
"""File `uri`s name the real host: the SDK parses only `https://` URIs (`t_file_name`) and
`Part.from_uri` recognises Files API URIs by this host; the emulator reads the id back."""
_RATE_LIMITS = "https://ai.google.dev/gemini-api/docs/rate-limits"

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",  # no public capture; the canonical code of "not served here"
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


def error(
    code: int,
    message: str,
    status: str | None = None,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """The service's error body; the SDK maps 4xx to ClientError and 5xx to ServerError."""
    inner: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or STATUS_BY_CODE.get(code, "UNKNOWN"),
    }
    if details:
        inner["details"] = details
    return JSONResponse({"error": inner}, status_code=code, headers=headers)


def bad_request(violations: Sequence[tuple[str | None, str]]) -> JSONResponse:
    """400 INVALID_ARGUMENT naming each bad field, as google.rpc.BadRequest field violations
    (the message repeats the descriptions, one per line, as the service's does; a violation of
    the body's root has no `field`, as the service writes it)."""
    return error(
        400,
        "\n".join(description for _, description in violations),
        details=[
            {
                "@type": _RPC + "BadRequest",
                "fieldViolations": [
                    {"field": field, "description": description}
                    if field is not None
                    else {"description": description}
                    for field, description in violations
                ],
            }
        ],
    )


def retry_info(seconds: float) -> dict[str, Any]:
    """google.rpc.RetryInfo; durations are strings of seconds with an `s` suffix."""
    return {"@type": _RPC + "RetryInfo", "retryDelay": f"{seconds:g}s"}


def error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": _RPC + "ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def quota_details(
    quota_id: str, retry_seconds: float | None = 1.0, value: int | None = None
) -> list[dict[str, Any]]:
    """The details of a real 429: which quota (QuotaFailure), where to read (Help), and when
    to come back (RetryInfo, left out for quotas that time does not refill)."""
    violation: dict[str, Any] = {
        "quotaMetric": f"generativelanguage.googleapis.com/{quota_id}",
        "quotaId": quota_id,
    }
    if value is not None:
        violation["quotaValue"] = str(value)
    details: list[dict[str, Any]] = [
        {"@type": _RPC + "QuotaFailure", "violations": [violation]},
        {
            "@type": _RPC + "Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_LIMITS}],
        },
    ]
    if retry_seconds is not None:
        details.append(retry_info(retry_seconds))
    return details


def operation_error(state: str) -> dict[str, Any]:
    """`Operation.error` of a job that ended without results (google.rpc.Status)."""
    code, message = _END_ERRORS[state]
    return {"code": code, "message": message}


_END_ERRORS = {
    jobs.FAILED: (13, "The batch failed: an internal error has occurred."),
    jobs.CANCELLED: (1, "The batch was cancelled."),
    jobs.EXPIRED: (4, "The batch expired: it did not finish within 48 hours."),
}


def timestamp(seconds: float) -> str:
    """RFC 3339 UTC with microseconds and `Z`, as the service writes them."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_json(file: FileRow, base_url: str, now: float) -> dict[str, Any]:
    """The File resource; media files are PROCESSING until their `active_time`."""
    body: dict[str, Any] = {
        "name": f"files/{file.id}",
        "mimeType": file.mime_type,
        "createTime": timestamp(file.create_time),
        "updateTime": timestamp(max(file.create_time, min(now, file.active_time))),
        "expirationTime": timestamp(file.expire_time),
        "uri": f"{PUBLIC_HOST}/v1beta/files/{file.id}",
        "state": "PROCESSING" if now < file.active_time else "ACTIVE",
        "source": file.source,
    }
    if file.size_bytes:
        body["sizeBytes"] = str(file.size_bytes)  # int64 → string; zero omitted (proto3)
    if file.sha256:
        body["sha256Hash"] = file.sha256
    if file.display_name:
        body["displayName"] = file.display_name
    if file.source == "GENERATED":
        # Without downloadUri the SDK refuses files.download(file=<File>) locally (pitfall 16);
        # the real value has the /download/v1beta form (pitfall 21).
        body["downloadUri"] = f"{base_url}/download/v1beta/files/{file.id}:download?alt=media"
    return body


def _stats(batch: BatchRow, state: str, now: float) -> dict[str, str]:
    if state == jobs.SUCCEEDED:
        counts = {
            "requestCount": batch.request_count,
            "successfulRequestCount": batch.success_count,
            "failedRequestCount": batch.failed_count,
        }
    elif state in (jobs.PENDING, jobs.RUNNING):
        done = jobs.requests_done(batch, now) if state == jobs.RUNNING else 0
        # Requests fail at the job's error rate as they are done; the final counts are exact.
        failed = round(done * batch.request_error_rate)
        counts = {
            "requestCount": batch.request_count,
            "successfulRequestCount": done - failed,
            "failedRequestCount": failed,
            "pendingRequestCount": batch.request_count - done,
        }
    else:
        counts = {"requestCount": batch.request_count}
    # proto3 JSON: int64 as strings, zero counters omitted (pitfall 22).
    return {name: str(value) for name, value in counts.items() if value}


def batch_json(batch: BatchRow, now: float) -> dict[str, Any]:
    """The GenerateContentBatch / EmbedContentBatch resource (an Operation's `metadata`, and
    the answer of the update routes)."""
    phase = jobs.derive(batch, now)
    kind = "EmbedContentBatch" if batch.kind == "embed" else "GenerateContentBatch"
    if batch.inline:
        input_config: dict[str, Any] = {"requests": {}}
    else:
        input_config = {"fileName": f"files/{batch.input_file}"}
    update = phase.end_time if phase.end_time is not None else now
    resource: dict[str, Any] = {
        "@type": _TYPE_PREFIX + kind,
        "name": f"batches/{batch.id}",
        "model": batch.model,
        "state": f"BATCH_STATE_{phase.state}",
        "createTime": timestamp(batch.create_time),
        "updateTime": timestamp(update),
        "inputConfig": input_config,
        "batchStats": _stats(batch, phase.state, now),
    }
    if batch.display_name is not None:
        resource["displayName"] = batch.display_name
    if batch.priority:
        resource["priority"] = str(batch.priority)  # int64: a string; 0 omitted (proto3)
    if phase.state in jobs.TERMINAL:
        resource["endTime"] = timestamp(update)
    return resource


def operation_json(
    batch: BatchRow,
    now: float,
    inline_responses: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The Operation wrapper the SDK parses (it reads only `name` and `metadata`, pitfall 9).

    `inline_responses` None means "a list item": like the service, lists carry no inline output.
    A job that ended without results carries `error` (google.rpc.Status), as every finished
    Operation has either `response` or `error`.
    """
    metadata = batch_json(batch, now)
    state = metadata["state"].removeprefix("BATCH_STATE_")
    operation: dict[str, Any] = {"name": f"batches/{batch.id}", "metadata": metadata}
    if state in jobs.TERMINAL:
        operation["done"] = True
    if state in _END_ERRORS:
        operation["error"] = operation_error(state)
    output: dict[str, Any] | None = None
    if batch.state == jobs.SUCCEEDED:
        if batch.output_file is not None:
            output = {"responsesFile": f"files/{batch.output_file}"}
        elif inline_responses is not None:
            # Double nesting, exactly as the SDK reads it (pitfall 10).
            embed = batch.kind == "embed"
            field = "inlinedEmbedContentResponses" if embed else "inlinedResponses"
            output = {field: {"inlinedResponses": inline_responses}}
    if output is not None:
        metadata["output"] = output
        operation["response"] = {"@type": metadata["@type"] + "Output", **output}
    return operation
