"""The typed fast path of a JSONL line: msgspec Structs for the common shape of a request.

Text parts, the usual request and generationConfig fields, both spellings, unknown fields
forbidden. Whatever they do not accept (media parts, rarer fields, and every mistake) goes to
`requests.check_line`, which has the final word: the fast path must only ever accept lines
`check_line` accepts. Split from `manifests.requests`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec

from reconciler.manifests.model import Task
from reconciler.manifests.requests import both_spellings

# ---------------------------------------------------------------------------------------------
# Typed fast path: msgspec Structs for the common shape of a line — text parts, the usual request
# and generationConfig fields, both spellings — with unknown fields forbidden. Whatever they do not
# accept (media parts, rarer fields, and every mistake) goes to `check_line`, which has the final
# word: a line it accepts is valid. So the fast path must only ever accept lines `check_line`
# accepts; it is deliberately a subset. Encoding a Struct with `order="sorted"` omits unset fields
# and sorts names, giving the same canonical bytes as the plain value: digests agree across paths.

_UNSET = msgspec.UNSET
_Unset = msgspec.UnsetType
_NonEmpty = msgspec.Meta(min_length=1)

_FAST_GENERATION_FIELDS = (
    "candidate_count", "max_output_tokens", "response_json_schema", "response_mime_type",
    "response_modalities", "response_schema", "seed", "stop_sequences", "temperature",
    "thinking_config", "top_k", "top_p", "image_config", "presence_penalty", "frequency_penalty",
)  # fmt: skip
_FAST_REQUEST_FIELDS = ("cached_content", "safety_settings", "tools", "tool_config", "labels")


def _optional(names: Iterable[str]) -> list[tuple[str, Any, Any]]:
    return [(name, Any, _UNSET) for name in sorted(both_spellings(names))]


class _TextPart(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    # Only text parts: `text` is required and no other data field is declared, so the part oneof
    # holds without a per-part Python check; media parts take the slow path.
    text: str
    thought: bool | _Unset = _UNSET
    thoughtSignature: str | _Unset = _UNSET
    thought_signature: str | _Unset = _UNSET


class _Content(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    parts: Annotated[list[_TextPart], _NonEmpty]
    role: Literal["user", "model"] | _Unset = _UNSET


_GenerationConfig = msgspec.defstruct(
    "GenerationConfig",
    _optional(_FAST_GENERATION_FIELDS),
    forbid_unknown_fields=True,
    omit_defaults=True,
)
_GenerateRequest = msgspec.defstruct(
    "GenerateContentRequest",
    list[Any]([("contents", Annotated[list[_Content], _NonEmpty])])
    + [(n, _GenerationConfig | _Unset, _UNSET) for n in ("generationConfig", "generation_config")]
    + [(n, _Content | _Unset, _UNSET) for n in ("systemInstruction", "system_instruction")]
    + _optional(_FAST_REQUEST_FIELDS),
    forbid_unknown_fields=True,
    omit_defaults=True,
)
_PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
_EmbedRequest = msgspec.defstruct(
    "EmbedContentRequest",
    list[Any]([("content", _Content)])
    + [
        (n, _PositiveInt | _Unset, _UNSET)
        for n in ("output_dimensionality", "outputDimensionality")
    ]
    + [(n, str | _Unset, _UNSET) for n in ("task_type", "taskType", "title")],
    forbid_unknown_fields=True,
    omit_defaults=True,
)


class _GenerateLine(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, _NonEmpty]
    request: _GenerateRequest  # type: ignore[valid-type]


class _EmbedLine(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, _NonEmpty]
    request: _EmbedRequest  # type: ignore[valid-type]


def line_decoder(task: Task) -> msgspec.json.Decoder[Any]:
    """A decoder that parses and shape-checks a common line in C; `.key` and `.request` on success.

    Raises msgspec.DecodeError (msgspec.ValidationError for a shape it does not accept); the
    caller then decides with `check_line`.
    """
    line_type: type[msgspec.Struct] = _EmbedLine if task is Task.EMBED else _GenerateLine
    return msgspec.json.Decoder(line_type)


def struct_max_output_tokens(request: Any) -> int | None:
    """`max_output_tokens` of a request the typed decoder accepted (a generate request Struct)."""
    config = request.generationConfig
    if config is _UNSET:
        config = request.generation_config
        if config is _UNSET:
            return None
    limit = config.maxOutputTokens
    if limit is _UNSET:
        limit = config.max_output_tokens
    return limit if type(limit) is int and limit > 0 else None
