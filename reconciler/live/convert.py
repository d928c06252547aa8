"""Conversion between SDK objects and the tool's values: answers -> Live values (snapshot.py),
inline request lines -> the SDK's batch sources. Pure: no calls, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

import pydantic
from google.genai import types

from reconciler.live.batch_stats import parse_stats
from reconciler.live.boundary import malformed
from reconciler.live.snapshot import (
    BatchStats,
    InlineError,
    InlineResult,
    JsonObject,
    LiveFile,
    LiveJob,
)
from reconciler.live.wire import (
    job_state_from_service,
    split_embed_requests,
    split_generate_request,
    strip_prefix,
)

_FILE_FIELDS: Final = frozenset(
    field.alias or name for name, field in types.File.model_fields.items()
)


def live_job(job: types.BatchJob, call: str, *, stats: BatchStats | None = None) -> LiveJob:
    """The job as a Live value; `stats` are its `batchStats`, which the SDK's conversion drops
    for the Developer API (batch_stats.py reads them from the answer)."""
    if not job.name:
        malformed(call, "batch job without a name")
    dest = job.dest
    inline = bool(dest and (dest.inlined_responses or dest.inlined_embed_content_responses))
    return LiveJob(
        name=job.name,
        display_name=job.display_name,
        state=job_state_from_service(strip_prefix(job.state.name) if job.state else None),
        model=job.model,
        create_time=job.create_time,
        update_time=job.update_time,
        end_time=job.end_time,
        output_file=dest.file_name if dest else None,
        has_inline_output=inline,
        stats=stats,
    )


def job_from_rest(operation: object, call: str) -> LiveJob:
    """A batch job as the Developer API answers it (an Operation: `name`, and the `GenerateContentBatch`
    in `metadata`; camelCase JSON), read without the SDK's models: what `live_job` makes of the
    SDK's `BatchJob` for the same answer (tests/unit/live/test_rest_jobs.py holds the two
    together), plus its `batchStats`, which the SDK drops. Reading a `batches.list` page of 1,000
    jobs through the SDK's conversion and pydantic models took most of a listing's CPU.
    """
    if not isinstance(operation, Mapping) or not isinstance(operation.get("name"), str):
        malformed(call, "batch job without a name")
    name: str = operation["name"]
    if not name:
        malformed(call, "batch job without a name")
    metadata = operation.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    output = metadata.get("output")
    file_name = output.get("responsesFile") if isinstance(output, Mapping) else None
    state = metadata.get("state")
    return LiveJob(
        name=name,
        display_name=_text(metadata.get("displayName"), call),
        state=job_state_from_service(state if isinstance(state, str) else None),
        model=_text(metadata.get("model"), call),
        create_time=_time(metadata.get("createTime"), call),
        update_time=_time(metadata.get("updateTime"), call),
        end_time=_time(metadata.get("endTime"), call),
        output_file=_text(file_name, call),
        has_inline_output=isinstance(output, Mapping) and _has_inline_output(output),
        stats=parse_stats(metadata.get("batchStats")),
    )


def _has_inline_output(output: Mapping[str, object]) -> bool:
    """Whether a job's output holds inline responses (generate or embed, either field)."""
    for field in ("inlinedResponses", "inlinedEmbedContentResponses"):
        wrapper = output.get(field)
        if isinstance(wrapper, Mapping) and wrapper.get("inlinedResponses"):
            return True
    return False


def _text(value: object, call: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    malformed(call, f"a string was expected, not {type(value).__name__}")


def _time(value: object, call: str) -> datetime | None:
    """An RFC 3339 timestamp (nanoseconds cut to microseconds, as pydantic reads them)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            # Not quoted: a value cut short could hold part of a secret no redaction matches.
            malformed(call, f"not a timestamp ({len(value)} characters)")
    malformed(call, f"a timestamp was expected, not {type(value).__name__}")


def live_file(file: types.File, call: str) -> LiveFile:
    if not file.name:
        malformed(call, "file without a name")
    return LiveFile(
        name=file.name,
        display_name=file.display_name,
        size_bytes=file.size_bytes or 0,
        sha256_b64=file.sha256_hash,
        state=strip_prefix(file.state.name if file.state else None) or "STATE_UNSPECIFIED",
        expiration_time=file.expiration_time,
        source=strip_prefix(file.source.name) if file.source else None,
        uri=file.uri,
        create_time=file.create_time,
        download_uri=file.download_uri,
    )


def file_from_rest(body: Mapping[str, object]) -> types.File:
    """A REST `File` resource (camelCase JSON) as the SDK's model.

    Fields this SDK release does not know are dropped, as the SDK's own parsing does: its
    models forbid extra fields, and the service may add some.

    Raises:
        pydantic.ValidationError: a known field has the wrong shape.
    """
    return types.File.model_validate({k: v for k, v in body.items() if k in _FILE_FIELDS})


def inline_results(dest: types.BatchJobDestination | None) -> list[InlineResult]:
    """The inline responses of a job's destination, in the service's order (generate, then
    embed: a job has one kind)."""
    results: list[InlineResult] = []
    if dest is None:
        return results
    for index, item in enumerate(dest.inlined_responses or ()):
        results.append(
            InlineResult(
                index=index,
                key=_metadata_key(item.metadata),
                response=_json_object(item.response),
                error=_inline_error(item.error),
            )
        )
    for index, embed in enumerate(dest.inlined_embed_content_responses or ()):
        results.append(
            InlineResult(
                index=index,
                key=_metadata_key(embed.metadata),
                response=_json_object(embed.response),
                error=_inline_error(embed.error),
            )
        )
    return results


def _json_object(model: pydantic.BaseModel | None) -> JsonObject | None:
    """A response model back in its REST shape (camelCase), dropping unset fields."""
    if model is None:
        return None
    dumped: JsonObject = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _inline_error(error: types.JobError | None) -> InlineError | None:
    return InlineError(code=error.code, message=error.message) if error else None


def _metadata_key(metadata: Mapping[str, object] | None) -> str | None:
    if not metadata:
        return None
    key = metadata.get("key")
    return None if key is None else str(key)


def _requests_of(inline_requests: Sequence[Mapping[str, object]]) -> list[Mapping[str, object]]:
    requests: list[Mapping[str, object]] = []
    for index, line in enumerate(inline_requests):
        request = line.get("request")
        if not isinstance(request, Mapping):
            raise ValueError(f"inline request {index} has no `request` object")
        requests.append(request)
    return requests


def generate_source(
    file_name: str | None, inline_requests: Sequence[Mapping[str, object]] | None
) -> types.BatchJobSource:
    """The source of a generate job: a file, or inline lines `{"key", "request"}` whose keys
    travel as `metadata.key`.

    Raises:
        ValueError, pydantic.ValidationError: an inline line is not a usable request.
    """
    if file_name is not None:
        return types.BatchJobSource(file_name=file_name)
    assert inline_requests is not None
    inlined: list[types.InlinedRequest] = []
    for line, request in zip(inline_requests, _requests_of(inline_requests), strict=True):
        parts = split_generate_request(request)
        key = line.get("key")
        inlined.append(
            types.InlinedRequest.model_validate(
                {
                    "model": parts.model,
                    "contents": parts.contents,
                    "config": parts.config or None,
                    "metadata": {"key": str(key)} if key is not None else None,
                }
            )
        )
    return types.BatchJobSource(inlined_requests=inlined)


def embed_source(
    file_name: str | None, inline_requests: Sequence[Mapping[str, object]] | None
) -> types.EmbeddingsBatchJobSource:
    """The source of an embed job: a file, or inline lines that share their options (the
    SDK's EmbedContentBatch has one config and no metadata; results match by position).

    Raises:
        ValueError, pydantic.ValidationError: the inline lines are not usable requests.
    """
    if file_name is not None:
        return types.EmbeddingsBatchJobSource(file_name=file_name)
    assert inline_requests is not None
    parts = split_embed_requests(_requests_of(inline_requests))
    return types.EmbeddingsBatchJobSource(
        inlined_requests=types.EmbedContentBatch.model_validate(
            {"contents": parts.contents, "config": parts.config or None}
        )
    )
