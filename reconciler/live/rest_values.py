"""Developer API answers (camelCase JSON) -> Live values, read without the SDK's models.

What `convert.live_job`, `convert.live_file` and the adapter's `models.get` make of the SDK's
`BatchJob`, `File` and `Model` for the same answer (tests/unit/live/test_rest_jobs.py and
test_rest_reads.py hold each pair together). Reading a `batches.list` page of 1,000 jobs
through the SDK's conversion and pydantic models took most of a listing's CPU, and `plan` reads
without importing the SDK at all (rest_reads.py). A value of the wrong type is a malformed
answer. Pure: no calls, no I/O, no google.genai.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from reconciler.live.batch_stats import parse_stats
from reconciler.live.boundary import malformed
from reconciler.live.snapshot import LiveFile, LiveJob, LiveModel
from reconciler.live.wire import job_state_from_service, strip_prefix

FILE_STATES: Final = frozenset({"STATE_UNSPECIFIED", "PROCESSING", "ACTIVE", "FAILED"})
"""The SDK's `FileState` members; a name in another case is read as the member."""
FILE_SOURCES: Final = frozenset({"SOURCE_UNSPECIFIED", "UPLOADED", "GENERATED", "REGISTERED"})
"""The SDK's `FileSource` members."""


def job_from_rest(operation: object, call: str) -> LiveJob:
    """A batch job as the Developer API answers it (an Operation: `name`, and the
    `GenerateContentBatch` in `metadata`), plus its `batchStats`, which the SDK drops."""
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


def file_from_rest(body: object, call: str) -> LiveFile:
    """A `File` resource as `convert.live_file` reads the SDK's model of it."""
    if not isinstance(body, Mapping):
        malformed(call, "a file is not an object")
    name = _text(body.get("name"), call)
    if not name:
        malformed(call, "file without a name")
    return LiveFile(
        name=name,
        display_name=_text(body.get("displayName"), call),
        size_bytes=_integer(body.get("sizeBytes"), call) or 0,
        sha256_b64=_text(body.get("sha256Hash"), call),
        state=_member(body.get("state"), FILE_STATES, call) or "STATE_UNSPECIFIED",
        expiration_time=_time(body.get("expirationTime"), call),
        source=_member(body.get("source"), FILE_SOURCES, call),
        uri=_text(body.get("uri"), call),
        create_time=_time(body.get("createTime"), call),
        download_uri=_text(body.get("downloadUri"), call),
    )


def model_from_rest(body: object, name: str, call: str) -> LiveModel:
    """A `Model` as the adapter reads the SDK's (`supportedGenerationMethods` are its
    `supported_actions`); `name` when the answer names none."""
    if not isinstance(body, Mapping):
        malformed(call, "a model is not an object")
    methods = body.get("supportedGenerationMethods")
    if methods is not None and (
        not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)
    ):
        malformed(call, "`supportedGenerationMethods` is not a list of strings")
    return LiveModel(
        name=_text(body.get("name"), call) or name,
        supported_methods=tuple(methods or ()),
        input_token_limit=_integer(body.get("inputTokenLimit"), call),
        output_token_limit=_integer(body.get("outputTokenLimit"), call),
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


def _integer(value: object, call: str) -> int | None:
    """An integer, or an int64 in its proto-JSON spelling (a string of digits), as pydantic
    reads both into an `int` field."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            # Not quoted: a value cut short could hold part of a secret no redaction matches.
            malformed(call, f"not an integer ({len(value)} characters)")
    malformed(call, f"an integer was expected, not {type(value).__name__}")


def _member(value: object, members: frozenset[str], call: str) -> str | None:
    """An enum field as the SDK's case-insensitive enums read it: a member's name in any case
    is that member; another string is kept as it came (the SDK makes a pseudo-member of it)."""
    if value is None:
        return None
    if not isinstance(value, str):
        malformed(call, f"a string was expected, not {type(value).__name__}")
    return value.upper() if value.upper() in members else strip_prefix(value)


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
