"""The request schema of a batch line: GenerateContentRequest / EmbedContentRequest, both spellings.

Two checkers share one vocabulary (the SDK-derived field sets in `_sdk_fields`):

* typed msgspec Structs decode a JSONL line and check its shape in C — the fast path, cheap enough
  to run over a multi-GB input on every commit;
* `check_request` walks a plain value and explains what is wrong, with hints for misplaced and
  misspelt fields. It runs on inline requests and on the few lines the fast path rejects, so users
  always get the explanation and the common case never pays for it.

Both accept camelCase and snake_case, as the service's proto-JSON parser does. Only the fields that
decide whether a job can run are checked in depth (contents/parts, inlineData, fileData,
generationConfig's names); the rest is passed to the service as written.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from reconciler.manifests import _sdk_fields as sdk
from reconciler.manifests.model import Task

PathPart = str | int
"""An element of a JSON path: a field name or a list index."""

DIGEST_BYTES = 8
"""Request digests are the first 8 bytes (16 hex characters) of sha256 over canonical JSON."""


def camel(name: str) -> str:
    """snake_case -> camelCase, as proto-JSON spells a field."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def both_spellings(names: Iterable[str]) -> frozenset[str]:
    """`names` (the SDK's snake_case) and their REST camelCase twins: the service takes both."""
    names = frozenset(names)
    return names | {camel(n) for n in names}


def snake(name: str) -> str:
    """camelCase -> snake_case (identity for names already in snake_case)."""
    out: list[str] = []
    for char in name:
        if char.isupper():
            out.append("_")
            out.append(char.lower())
        else:
            out.append(char)
    return "".join(out)


PART_DATA_FIELDS = frozenset(
    {
        "text",
        "inline_data",
        "file_data",
        "function_call",
        "function_response",
        "executable_code",
        "code_execution_result",
        "tool_call",
        "tool_response",
    }
)
"""The Part fields that carry the part's content; the REST `Part.data` oneof allows exactly one.
The other Part fields (thought, thoughtSignature, videoMetadata, ...) are metadata beside it."""

LOCAL_PATH_FIELD = "path"
"""reconciler's extension of fileData: a local file (relative to the project root) that apply
uploads with the Files API before the job is created, substituting its `fileUri`."""

GENERATE_FIELDS = both_spellings(sdk.GENERATE_REQUEST_FIELDS)
EMBED_FIELDS = both_spellings(sdk.EMBED_REQUEST_FIELDS)
GENERATION_CONFIG_FIELDS = both_spellings(sdk.GENERATION_CONFIG_FIELDS)
CONTENT_FIELDS = both_spellings(sdk.CONTENT_FIELDS)
PART_FIELDS = both_spellings(sdk.PART_FIELDS)
BLOB_FIELDS = both_spellings(sdk.BLOB_FIELDS)
FILE_DATA_FIELDS = both_spellings(sdk.FILE_DATA_FIELDS | {LOCAL_PATH_FIELD})
LINE_FIELDS = frozenset({"key", "request"})
ROLES = frozenset({"user", "model"})


@dataclass(frozen=True, slots=True)
class RequestProblem:
    """One thing wrong with a request; `path` is relative to the value that was checked."""

    path: tuple[PathPart, ...]
    message: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class MediaUse:
    """A request part that names a local file (`fileData: {path: ...}`)."""

    path: str
    """As written in the request (relative to the project root)."""
    where: tuple[PathPart, ...]
    """JSON path of the `path` value inside the checked value."""
    mime_type: str | None
    """The part's declared mimeType, if any."""


def format_path(path: Iterable[PathPart]) -> str:
    """`('request', 'contents', 0, 'parts')` -> `request.contents[0].parts`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean X?` hint when `name` is close to one of `candidates` (difflib)."""
    pool = sorted(set(candidates))
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered:
        return f"did you mean `{lowered[name.lower()]}`?"
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.75)
    if not close:
        close = difflib.get_close_matches(snake(name), pool, n=1, cutoff=0.75)
    return f"did you mean `{close[0]}`?" if close else None


def _spelled_like(name: str, example: str) -> str:
    """Spell `name` (snake_case) the way the user spelt `example`; camelCase (REST's) by default."""
    return name if "_" in example else camel(name)


class _Checker:
    """Collects problems and media uses while walking one request (plain JSON values)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.problems: list[RequestProblem] = []
        self.media: list[MediaUse] = []

    def add(self, path: tuple[PathPart, ...], message: str, hint: str | None = None) -> None:
        self.problems.append(RequestProblem(path, message, hint))

    def fields(
        self,
        obj: Mapping[str, Any],
        path: tuple[PathPart, ...],
        allowed: frozenset[str],
        what: str,
        misplaced: Mapping[str, str] | None = None,
    ) -> dict[str, tuple[str, Any]]:
        """Check field names; return snake_name -> (name as written, value) for known fields."""
        seen: dict[str, tuple[str, Any]] = {}
        for name, value in obj.items():
            if not isinstance(name, str):
                self.add(path, f"field names must be strings, got {name!r}")
                continue
            if name not in allowed:
                hint = (misplaced or {}).get(snake(name)) or did_you_mean(name, allowed)
                self.add((*path, name), f"unknown field `{name}` in {what}", hint)
                continue
            key = snake(name)
            if key in seen:
                self.add(
                    (*path, name),
                    f"`{seen[key][0]}` and `{name}` are the same field spelt twice",
                    "keep one spelling",
                )
                continue
            seen[key] = (name, value)
        return seen

    def request(self, request: Any, path: tuple[PathPart, ...]) -> None:
        if self.task is Task.EMBED:
            self.embed_request(request, path)
        else:
            self.generate_request(request, path)

    def generate_request(self, request: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(request, dict):
            self.add(
                path, f"a request must be an object (GenerateContentRequest), got {_kind(request)}"
            )
            return
        misplaced = {
            **{
                name: _nest_hint(name, request, "generation_config")
                for name in sdk.GENERATION_CONFIG_FIELDS
            },
            "content": "generate requests take `contents`: a list of {role, parts}",
            "config": "REST requests put generation options in `generationConfig`",
            "prompt": "put the prompt in `contents: [{parts: [{text: ...}]}]`",
            "text": "put the text in `contents: [{parts: [{text: ...}]}]`",
        }
        fields = self.fields(request, path, GENERATE_FIELDS, "GenerateContentRequest", misplaced)
        if "contents" not in fields:
            self.add(
                path,
                "missing `contents` in GenerateContentRequest",
                "add `contents: [{parts: [{text: ...}]}]`",
            )
        else:
            name, contents = fields["contents"]
            self.contents(contents, (*path, name))
        if "generation_config" in fields:
            name, config = fields["generation_config"]
            self.generation_config(config, (*path, name))
        if "system_instruction" in fields:
            name, instruction = fields["system_instruction"]
            self.content(instruction, (*path, name), role_allowed=True)

    def embed_request(self, request: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(request, dict):
            self.add(
                path, f"a request must be an object (EmbedContentRequest), got {_kind(request)}"
            )
            return
        misplaced = {
            "contents": "an EmbedContentRequest takes one `content` ({parts: [...]}), not `contents`",
            "generation_config": "embed requests take `output_dimensionality` and `task_type` directly",
            "config": "EmbedContentRequest options (`output_dimensionality`, `task_type`, `title`) sit directly under `request`",
        }
        fields = self.fields(request, path, EMBED_FIELDS, "EmbedContentRequest", misplaced)
        if "content" not in fields:
            # `contents` instead of `content` was already reported, with the fix, as unknown.
            if not any(snake(k) == "contents" for k in request):
                hint = "add `content: {parts: [{text: ...}]}`"
                self.add(path, "missing `content` in EmbedContentRequest", hint)
        else:
            name, content = fields["content"]
            self.content(content, (*path, name), role_allowed=True)
        if "output_dimensionality" in fields:
            name, value = fields["output_dimensionality"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self.add((*path, name), f"`{name}` must be a positive integer, got {value!r}")
        for text_field in ("task_type", "title", "mime_type"):
            if text_field in fields:
                name, value = fields[text_field]
                if not isinstance(value, str):
                    self.add((*path, name), f"`{name}` must be a string, got {_kind(value)}")

    def contents(self, contents: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(contents, list):
            self.add(
                path, f"`contents` must be a list of {{role, parts}} objects, got {_kind(contents)}"
            )
            return
        if not contents:
            self.add(path, "`contents` is empty", "add at least one {parts: [{text: ...}]}")
        for index, content in enumerate(contents):
            self.content(content, (*path, index), role_allowed=True)

    def content(self, content: Any, path: tuple[PathPart, ...], *, role_allowed: bool) -> None:
        if not isinstance(content, dict):
            self.add(
                path, f"a Content must be an object {{role?, parts: [...]}}, got {_kind(content)}"
            )
            return
        misplaced = {name: "a part field goes inside `parts: [{...}]`" for name in sdk.PART_FIELDS}
        fields = self.fields(content, path, CONTENT_FIELDS, "Content", misplaced)
        if "role" in fields and role_allowed:
            name, role = fields["role"]
            if role not in ROLES:
                hint = "use `systemInstruction` for system prompts" if role == "system" else None
                self.add((*path, name), f"`role` must be `user` or `model`, got {role!r}", hint)
        if "parts" not in fields:
            self.add(path, "missing `parts` in Content", "add `parts: [{text: ...}]`")
            return
        name, parts = fields["parts"]
        if not isinstance(parts, list):
            self.add((*path, name), f"`parts` must be a list of part objects, got {_kind(parts)}")
            return
        if not parts:
            self.add((*path, name), "`parts` is empty", "add at least one part, e.g. {text: ...}")
        for index, part in enumerate(parts):
            self.part(part, (*path, name, index))

    def part(self, part: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(part, dict):
            hint = "write {text: ...}" if isinstance(part, str) else None
            self.add(path, f"a part must be an object, got {_kind(part)}", hint)
            return
        fields = self.fields(part, path, PART_FIELDS, "Part")
        data = [fields[name][0] for name in sorted(PART_DATA_FIELDS) if name in fields]
        if not data:
            self.add(
                path,
                "a part needs exactly one of text, inlineData, fileData, functionCall, functionResponse, executableCode, codeExecutionResult",
            )
        elif len(data) > 1:
            self.add(
                path,
                f"a part holds exactly one kind of data, got {', '.join(f'`{d}`' for d in data)}",
                "split them into separate parts",
            )
        if "text" in fields:
            name, text = fields["text"]
            if not isinstance(text, str):
                self.add((*path, name), f"`{name}` must be a string, got {_kind(text)}")
        if "inline_data" in fields:
            name, blob = fields["inline_data"]
            self.blob(blob, (*path, name))
        if "file_data" in fields:
            name, file_data = fields["file_data"]
            self.file_data(file_data, (*path, name))

    def blob(self, blob: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(blob, dict):
            self.add(path, f"`inlineData` must be an object {{mimeType, data}}, got {_kind(blob)}")
            return
        fields = self.fields(blob, path, BLOB_FIELDS, "inlineData (Blob)")
        for required in ("mime_type", "data"):
            if required not in fields:
                self.add(
                    path,
                    f"missing `{_spelled_like(required, next(iter(blob), 'x'))}` in inlineData",
                )
            elif not isinstance(fields[required][1], str):
                self.add((*path, fields[required][0]), f"`{fields[required][0]}` must be a string")

    def file_data(self, file_data: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(file_data, dict):
            self.add(
                path,
                f"`fileData` must be an object {{fileUri | path, mimeType}}, got {_kind(file_data)}",
            )
            return
        fields = self.fields(file_data, path, FILE_DATA_FIELDS, "fileData")
        for name, value in fields.values():
            if not isinstance(value, str):
                self.add((*path, name), f"`{name}` must be a string, got {_kind(value)}")
                return
        has_uri, has_path = "file_uri" in fields, LOCAL_PATH_FIELD in fields
        if has_uri == has_path:
            self.add(
                path,
                "fileData needs exactly one of `fileUri` (an uploaded file) or `path` (a local file apply uploads)",
            )
            return
        if has_path:
            mime = fields.get("mime_type", (None, None))[1]
            self.media.append(
                MediaUse(fields[LOCAL_PATH_FIELD][1], (*path, LOCAL_PATH_FIELD), mime)
            )

    def generation_config(self, config: Any, path: tuple[PathPart, ...]) -> None:
        if not isinstance(config, dict):
            self.add(path, f"`generationConfig` must be an object, got {_kind(config)}")
            return
        misplaced = {
            name: f"`{camel(name)}` belongs at the top of the request, not in generationConfig"
            for name in sdk.GENERATE_REQUEST_FIELDS
        }
        self.fields(config, path, GENERATION_CONFIG_FIELDS, "generationConfig", misplaced)


def _nest_hint(name: str, request: Mapping[str, Any], parent: str) -> str:
    written = next((k for k in request if snake(k) == name), name)
    return f"did you mean {_spelled_like(parent, written)}.{written}?"


def _kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case dict():
            return "an object"
    return type(value).__name__


def check_request(
    request: Any, task: Task, path: tuple[PathPart, ...] = ()
) -> tuple[list[RequestProblem], list[MediaUse]]:
    """Check one request (a plain JSON value); return its problems and the local media it names."""
    checker = _Checker(task)
    checker.request(request, path)
    return checker.problems, checker.media


def check_line(line: Any, task: Task) -> tuple[list[RequestProblem], list[MediaUse]]:
    """Check one decoded JSONL line `{"key": ..., "request": {...}}`."""
    checker = _Checker(task)
    if not isinstance(line, dict):
        checker.add(
            (), f'a line must be an object {{"key": ..., "request": {{...}}}}, got {_kind(line)}'
        )
        return checker.problems, checker.media
    misplaced = {
        **{
            name: "request fields go inside `request`"
            for name in sdk.GENERATE_REQUEST_FIELDS | sdk.EMBED_REQUEST_FIELDS
        },
        **{
            name: f"did you mean request.generationConfig.{camel(name)}?"
            for name in sdk.GENERATION_CONFIG_FIELDS
        },
    }
    fields = checker.fields(line, (), LINE_FIELDS, "the line", misplaced)
    if "key" not in fields:
        checker.add((), "missing `key`", 'every line needs a unique string `"key"`')
    elif not isinstance(fields["key"][1], str) or not fields["key"][1]:
        checker.add(("key",), f"`key` must be a non-empty string, got {fields['key'][1]!r}")
    if "request" not in fields:
        checker.add((), "missing `request`")
    else:
        checker.request(fields["request"][1], ("request",))
    return checker.problems, checker.media


_CANONICAL = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> bytes:
    """Compact JSON with object keys sorted: equal requests give equal bytes whatever their layout."""
    return _CANONICAL.encode(value)


def request_digest(value: Any) -> bytes:
    """The DIGEST_BYTES-byte digest of a request's canonical JSON (a plain value or a typed Struct)."""
    return hashlib.sha256(_CANONICAL.encode(value)).digest()[:DIGEST_BYTES]


def max_output_tokens(request: Any) -> int | None:
    """A generate request's `generationConfig.maxOutputTokens` (either spelling), or None when it
    sets none: then only the model's own limit bounds its output (thinking included)."""
    if not isinstance(request, Mapping):
        return None
    config = request.get("generationConfig", request.get("generation_config"))
    if not isinstance(config, Mapping):
        return None
    limit = config.get("maxOutputTokens", config.get("max_output_tokens"))
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
