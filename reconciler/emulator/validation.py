"""Unknown-field checks of request bodies, worded as the service's proto-JSON parser words them.

The service parses a JSON body into its proto message and refuses any name the message does not
have: 400 INVALID_ARGUMENT, `Invalid JSON payload received. Unknown name "bogusField" at 'batch':
Cannot find field.`, with one google.rpc.BadRequest field violation per unknown name. Both
spellings of a field (camelCase and snake_case) are the same field to that parser.

The field sets are the messages' fields as the SDK's generated converters write them
(google/genai/batches.py, files.py) plus the output-only fields of the resources (which the
service accepts and ignores on input). Request lines inside JSONL files are not checked here:
they are read when the job runs, and a bad line is a per-request error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _both(*camel: str) -> frozenset[str]:
    """Each name in camelCase and in snake_case."""
    snake = ("".join(f"_{c.lower()}" if c.isupper() else c for c in name) for name in camel)
    return frozenset(camel) | frozenset(snake)


_BATCH = _both(
    "name",
    "model",
    "displayName",
    "inputConfig",
    "output",
    "createTime",
    "endTime",
    "updateTime",
    "batchStats",
    "state",
    "priority",
    "webhookConfig",
)
_INPUT_CONFIG = _both("fileName", "requests")
_INLINED_REQUESTS = _both("requests")
_INLINED_REQUEST = _both("request", "metadata")
_GENERATE_REQUEST = _both(
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "labels",
    "serviceTier",
    "store",
)
_EMBED_REQUEST = _both("model", "content", "taskType", "title", "outputDimensionality")
_UPLOAD_FILE = _both(
    "name",
    "displayName",
    "mimeType",
    "sizeBytes",
    "createTime",
    "updateTime",
    "expirationTime",
    "sha256Hash",
    "uri",
    "downloadUri",
    "state",
    "source",
    "videoMetadata",
    "error",
)

Violation = tuple[str, str]


def _unknown(body: Any, known: frozenset[str], where: str) -> Iterator[Violation]:
    if not isinstance(body, dict):
        return
    for name in body:
        if name not in known:
            at = f" at '{where}'" if where else ""
            yield (
                where or name,
                f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.',
            )


def create_batch(body: Any, embed: bool) -> list[Violation]:
    """Unknown names in a `batchGenerateContent` / `asyncBatchEmbedContent` body."""
    found = list(_unknown(body, _both("batch"), ""))
    batch = body.get("batch") if isinstance(body, dict) else None
    found += _unknown(batch, _BATCH, "batch")
    if not isinstance(batch, dict):
        return found
    config = batch.get("inputConfig", batch.get("input_config"))
    found += _unknown(config, _INPUT_CONFIG, "batch.input_config")
    wrapper = config.get("requests") if isinstance(config, dict) else None
    found += _unknown(wrapper, _INLINED_REQUESTS, "batch.input_config.requests")
    items = wrapper.get("requests") if isinstance(wrapper, dict) else None
    request_fields = _EMBED_REQUEST if embed else _GENERATE_REQUEST
    for index, item in enumerate(items if isinstance(items, list) else []):
        where = f"batch.input_config.requests.requests[{index}]"
        found += _unknown(item, _INLINED_REQUEST, where)
        if isinstance(item, dict):
            found += _unknown(item.get("request"), request_fields, f"{where}.request")
    return found


def update_batch(body: Any) -> list[Violation]:
    """Unknown names in an update body (a batch resource)."""
    return list(_unknown(body, _BATCH, ""))


def upload_start(body: Any) -> list[Violation]:
    """Unknown names in the metadata of an upload (`{"file": File}`)."""
    found = list(_unknown(body, _both("file"), ""))
    if isinstance(body, dict):
        found += _unknown(body.get("file"), _UPLOAD_FILE, "file")
    return found


def register_files(body: Any) -> list[Violation]:
    return list(_unknown(body, _both("uris"), ""))
