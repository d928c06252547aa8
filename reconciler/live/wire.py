"""Pure translations between the service's REST vocabulary and the adapter's inputs and outputs.

Job state names, and the split of a REST-shaped request (the `request` of a JSONL input line)
into the pieces the SDK's typed inline-request models take. No SDK import, no I/O, so every
rule here is unit-tested with plain values; gemini.py does the SDK calls.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from reconciler.state.document import JobState

_STAGED_INPUT = re.compile(
    r"gs://[^/]+/(?:[^?#]+/)?inputs/(?P<owner>[^/]+)/[0-9a-f]{64}\.[A-Za-z0-9]+"
)
"""How the Vertex adapter names what it stages (`<staging>/inputs/<owner>/<sha256>.<ext>`)."""


def is_staged_input(uri: str, owners: Collection[str]) -> bool:
    """Whether a `gs://` input is one reconciler staged for a project whose tokens are
    `owners` (`live.tags.project_tokens`), as opposed to a `source.gcs` object Vertex read in
    place: the user's data, never a candidate for cleanup. The name's shape alone is not
    enough: a data lake may name its objects by their sha256 under an `inputs/` folder, so the
    owner folder must be this project's own."""
    match = _STAGED_INPUT.fullmatch(uri)
    return match is not None and match["owner"] in owners


FILE_ID_DELETE_LIMIT = 40
"""The longest file id (the name without `files/`) the Files API deletes. `files.delete` of a
longer one answers 400 "DeleteFileRequest.name: File ID ... cannot be more than 40 characters"
(python-genai #1759, open; the SDK sends the name as given, and `files.get` and the download
accept such ids). Every results file a batch job writes is `files/batch-<36-character job id>`,
a 42-character id: none can be deleted; each expires 48 h after it was written."""


def refuses_delete(file_name: str) -> bool:
    """Whether the Files API refuses to delete `file_name` whatever its state (an id over
    FILE_ID_DELETE_LIMIT characters), so a delete would be a call known to fail. A `gs://`
    object or a BigQuery table (Vertex) is not a Files API file."""
    if not file_name.startswith("files/"):
        return False
    return len(file_name.removeprefix("files/")) > FILE_ID_DELETE_LIMIT


_STATE_PREFIXES = ("BATCH_STATE_", "JOB_STATE_")

_STATE_ALIASES: Mapping[str, JobState] = {
    "PENDING": JobState.PENDING,
    "QUEUED": JobState.PENDING,
    "UNSPECIFIED": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "UPDATING": JobState.RUNNING,
    "PAUSED": JobState.RUNNING,
    # A cancel in progress is not an outcome yet: keep polling until CANCELLED (or SUCCEEDED,
    # if the job won the race).
    "CANCELLING": JobState.RUNNING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "PARTIALLY_SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "EXPIRED": JobState.EXPIRED,
}


def job_state_from_service(raw: str | None) -> JobState:
    """Map `BATCH_STATE_*` (the wire) or `JOB_STATE_*` (the SDK's enum) names to JobState.

    The SDK turns unknown strings into pseudo-enum members instead of failing
    (gemini-batch-protocol.md §2.3), so any case and either prefix may arrive. A missing or
    unspecified state counts as PENDING (the job exists; keep polling); an unrecognised one as
    UNKNOWN, which is not terminal, so nothing acts on a state it does not understand.
    """
    if raw is None:
        return JobState.PENDING
    name = raw.strip().upper()
    for prefix in _STATE_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return _STATE_ALIASES.get(name, JobState.UNKNOWN)


def strip_prefix(name: str | None) -> str | None:
    """The SDK's enum member name without its class prefix (`FileState.ACTIVE` -> `ACTIVE`)."""
    if name is None:
        return None
    return name.rsplit(".", 1)[-1]


# --- generate: REST GenerateContentRequest -> SDK InlinedRequest pieces ----------------------

_GENERATION_CONFIG_KEYS = ("generationConfig", "generation_config")
"""REST nests sampling fields under generationConfig; the SDK's GenerateContentConfig is flat
and its converter nests them again (batches.py `_GenerateContentConfig_to_mldev`)."""

_REQUEST_LEVEL_KEYS: Mapping[str, str] = {
    # REST request-level field (both spellings users write, §3) -> GenerateContentConfig field.
    # The SDK's converter moves these back to request level on the wire.
    "systemInstruction": "system_instruction",
    "system_instruction": "system_instruction",
    "tools": "tools",
    "toolConfig": "tool_config",
    "tool_config": "tool_config",
    "safetySettings": "safety_settings",
    "safety_settings": "safety_settings",
    "cachedContent": "cached_content",
    "cached_content": "cached_content",
    "labels": "labels",
    "serviceTier": "service_tier",
    "service_tier": "service_tier",
}


@dataclass(frozen=True, slots=True)
class GenerateParts:
    """A REST request split for `types.InlinedRequest(model=, contents=, config=)`."""

    contents: object
    config: dict[str, object]
    """GenerateContentConfig fields; generationConfig keys keep their spelling (the SDK's
    models accept camelCase aliases and snake_case names alike)."""
    model: str | None


def split_generate_request(request: Mapping[str, object]) -> GenerateParts:
    """Split a REST GenerateContentRequest into SDK InlinedRequest parts.

    Raises:
        ValueError: `contents` is missing, generationConfig is not an object, or a top-level
            field has no SDK equivalent (it would otherwise be dropped silently).
    """
    if "contents" not in request:
        raise ValueError("request has no `contents`")
    config: dict[str, object] = {}
    model: str | None = None
    for key, value in request.items():
        if key == "contents":
            continue
        if key in _GENERATION_CONFIG_KEYS:
            if not isinstance(value, Mapping):
                raise ValueError(f"`{key}` must be an object")
            config.update({str(k): v for k, v in value.items()})
        elif key in _REQUEST_LEVEL_KEYS:
            config[_REQUEST_LEVEL_KEYS[key]] = value
        elif key == "model":
            model = str(value)
        else:
            raise ValueError(f"request field `{key}` is not supported for inline requests")
    return GenerateParts(contents=request["contents"], config=config, model=model)


# --- embed: REST EmbedContentRequest list -> SDK EmbedContentBatch pieces --------------------

_EMBED_CONFIG_KEYS: Mapping[str, str] = {
    "taskType": "task_type",
    "task_type": "task_type",
    "title": "title",
    "outputDimensionality": "output_dimensionality",
    "output_dimensionality": "output_dimensionality",
}


@dataclass(frozen=True, slots=True)
class EmbedParts:
    """REST embed requests as `types.EmbedContentBatch(contents=, config=)`."""

    contents: list[object]
    config: dict[str, object]


def split_embed_requests(requests: Sequence[Mapping[str, object]]) -> EmbedParts:
    """Turn REST EmbedContentRequests into one content list plus one shared config.

    The SDK's EmbedContentBatch copies a single config into every request (batches.py
    `_EmbedContentBatch_to_mldev`, protocol §2), so per-request options must agree.

    Raises:
        ValueError: a request lacks `content`, has an unknown field, or its options differ from
            the first request's (use a file source for per-request options).
    """
    if not requests:
        raise ValueError("no embedding requests")
    contents: list[object] = []
    shared: dict[str, object] | None = None
    for index, request in enumerate(requests):
        if "content" not in request:
            raise ValueError(f"request {index} has no `content`")
        config: dict[str, object] = {}
        for key, value in request.items():
            if key == "content" or key == "model":
                continue
            if key not in _EMBED_CONFIG_KEYS:
                raise ValueError(f"request {index}: field `{key}` is not supported inline")
            config[_EMBED_CONFIG_KEYS[key]] = value
        if shared is None:
            shared = config
        elif config != shared:
            raise ValueError(
                f"request {index}: inline embedding requests must share taskType, title and "
                "outputDimensionality (the SDK sends one config for all); use a file source"
            )
        contents.append(request["content"])
    return EmbedParts(contents=contents, config=shared or {})
