"""The size of the create call that carries inline requests, as the SDK sends it, without the SDK.

The service limits the JSON body of `batchGenerateContent` (Google's payload error names 20 MiB;
the batch guide says inline requests stay under 20 MB), not the requests as the manifest
spells them: every request travels wrapped as `{"request": ..., "metadata": {"key": ...}}`
(embeddings as `{"request": ...}`), inside the batch envelope with its display name and
priority, serialised by `json.dumps` with its default separators (`", "`, `": "`) and non-ASCII
escaped as `\\uXXXX`. Ten thousand tiny requests gain half a megabyte of wrappers alone.

The SDK rebuilds each request from its typed models before sending, and its spelling of a key
is not always the manifest's (`generation_config` becomes `generationConfig`, but `inlineData`'s
`mimeType` goes out as `mime_type`; an integer `temperature` as `1.0`; a request's `model`
gains `models/`). So each key counts at the longer of its two spellings, an integer in a float
field of `generationConfig` as a float, `model` with its prefix, and a local media part as the
`fileData` apply puts in its place (the longest file URI the service hands out). The result is
never below what the SDK sends and a few bytes per request above it at most:
`tests/unit/manifests/test_inline_size.py` builds the body with the SDK's own converters and
compares. validate and plan import no SDK (`--help` and `validate` stay fast), hence this
mirror rather than a call into it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

LIMIT_BYTES: Final = 20 * 10**6
"""The most a create body may take: the batch guide's "under 20 MB" (decimal), which is below
the 20 MiB (20,971,520 bytes) Google's payload error names, so neither reading is exceeded."""

DISPLAY_NAME_MAX: Final = 128
"""A job's display_name is at most this many characters (live.tags.DISPLAY_NAME_MAX: the
user's text trimmed, then the identity tag)."""

MEDIA_URI_MAX: Final = 256
"""The longest file URI counted for a local media part (a Developer API file URI is
`https://generativelanguage.googleapis.com/v1beta/files/<id>`, under 100 characters; a Vertex
staged object `gs://<bucket>/<prefix>/inputs/<token>/<sha256>.<ext>`, under 200)."""

_FLOAT_FIELDS: Final = frozenset(
    {
        "temperature",
        "topP",
        "top_p",
        "presencePenalty",
        "presence_penalty",
        "frequencyPenalty",
        "frequency_penalty",
    }
)
"""generationConfig fields the SDK types as float: an integer goes out as `1.0`."""

_GENERATION_CONFIG: Final = frozenset({"generationConfig", "generation_config"})
_FILE_DATA: Final = frozenset({"fileData", "file_data"})
_CAMEL: Final = re.compile(r"_([a-z0-9])")
_SNAKE: Final = re.compile(r"([A-Z])")


def inline_body_bytes(
    requests: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    embed: bool,
    display_name: str,
    priority: int | None,
    media_mime: Mapping[str, str],
) -> int:
    """Bytes of the create call's JSON body for these `(key, request)` pairs, at least what
    the SDK sends (see the module docstring).

    Args:
        display_name: the user's display name (or the resource name); the identity tag apply
            appends is counted at its longest.
        media_mime: MIME type of each local media path the requests name (`fileData.path`).
    """
    wrappers = 0
    for key, request in requests:
        body = _size(request, media_mime, in_config=False)
        if embed:
            wrappers += len('{"request": }') + body
        else:
            wrappers += len('{"request": , "metadata": {"key": }}') + body + _string(key)
    wrappers += 2 * max(0, len(requests) - 1)  # ", " between them
    shown = display_name.strip()[:DISPLAY_NAME_MAX]
    envelope = len('{"batch": {"inputConfig": {"requests": {"requests": []}}, "displayName": }}')
    name = _string(shown) + DISPLAY_NAME_MAX  # the tag: ASCII, shorter than the whole name
    extra = len(f', "priority": {priority}') if priority is not None else 0
    return envelope + wrappers + name + extra


def _string(text: str) -> int:
    return len(json.dumps(text))


@functools.lru_cache(maxsize=4096)
def _key(name: str) -> int:
    """A key at the longer of its camelCase and snake_case spellings (quotes and `: `)."""
    camel = _CAMEL.sub(lambda m: m.group(1).upper(), name)
    snake = _SNAKE.sub(lambda m: "_" + m.group(1).lower(), name)
    return max(_string(name), _string(camel), _string(snake)) + 2


def _size(value: Any, media_mime: Mapping[str, str], *, in_config: bool) -> int:
    if isinstance(value, Mapping):
        total = 2 + 2 * max(0, len(value) - 1)
        for name, item in value.items():
            total += _key(str(name))
            if name in _FILE_DATA and isinstance(item, Mapping) and "path" in item:
                total += _media_part(item, media_mime)
            elif name == "model" and isinstance(item, str) and not item.startswith("models/"):
                total += _string("models/" + item)
            elif in_config and name in _FLOAT_FIELDS and _is_int(item):
                total += len(json.dumps(float(item)))
            else:
                total += _size(item, media_mime, in_config=name in _GENERATION_CONFIG)
        return total
    if isinstance(value, list | tuple):
        inner = sum(_size(item, media_mime, in_config=False) for item in value)
        return 2 + inner + 2 * max(0, len(value) - 1)
    return len(json.dumps(value, default=str))


def _media_part(part: Mapping[str, Any], media_mime: Mapping[str, str]) -> int:
    """`{"fileUri": <uri>, "mimeType": <mime>}`, as apply substitutes for `{path, mimeType}`."""
    mime = part.get("mimeType") or part.get("mime_type") or media_mime.get(str(part["path"]), "")
    uri = 2 + MEDIA_URI_MAX
    return 2 + _key("fileUri") + uri + 2 + _key("mimeType") + _string(str(mime))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
