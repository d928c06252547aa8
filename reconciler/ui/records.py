"""One results line (or one input request) as the viewer shows it: texts, images, finish
reason, tokens, error. Pure: bytes in, values out.

Results lines are `{"key": ..., "response": {...}}` or `{"key": ..., "error": {...}}` (a
`status` is an error too, as `apply.summary` counts it). Image parts arrive either as
`inlineData` (base64, when the output is a single file) or, when apply wrote the output as a
folder, as `{"file": {"path": ..., "mimeType": ...}}` naming the image beside the JSONL
(apply/outputs.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.jsonsafe import loads_bounded

MAX_INLINE_IMAGE_BYTES = 4 << 20
"""Base64 images larger than this are not put into a page as data: URLs (the page would weigh
more than the browser should hold for a list); the row says an image was left out."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image of a response: a file beside the results, or inline base64 data."""

    mime_type: str
    path: str | None = None
    """Relative to the results file's folder."""
    data_b64: str | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    prompt: int | None
    output: int | None
    total: int | None


@dataclass(frozen=True, slots=True)
class ResultView:
    """One results line, ready to show."""

    line: int
    key: str | None
    texts: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    finish_reason: str | None = None
    tokens: Tokens | None = None
    error: str | None = None
    embedding: int | None = None
    """Dimensions of an embedding response (its values are not shown)."""
    notes: tuple[str, ...] = ()
    """What could not be shown (an oversized image, a line that is not JSON)."""

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def answer(self) -> str:
        """The response as one text (what the diff between attempts compares)."""
        if self.error is not None:
            return f"error: {self.error}"
        if self.embedding is not None:
            return f"embedding of {self.embedding} values"
        return "\n".join(self.texts)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _error_text(error: object) -> str:
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message")
        return " ".join(str(p) for p in (code, message) if p is not None) or json.dumps(error)
    return str(error)


def _parts_of(response: Mapping[str, Any]) -> Sequence[Any]:
    candidates = response.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        return ()
    first = candidates[0]
    content = first.get("content") if isinstance(first, Mapping) else None
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return parts if isinstance(parts, list) else ()


def _image_of(part: Mapping[str, Any]) -> tuple[Image | None, str | None]:
    """(image, note) of one part; both None when the part is no image."""
    stored = part.get("file")
    if isinstance(stored, Mapping) and isinstance(stored.get("path"), str):
        return Image(str(stored.get("mimeType", "image/png")), path=str(stored["path"])), None
    inline = part.get("inlineData") or part.get("inline_data")
    if isinstance(inline, Mapping) and isinstance(inline.get("data"), str):
        mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
        if not mime.startswith("image/"):
            return None, f"inline {mime or 'data'} not shown"
        data = str(inline["data"])
        if len(data) > MAX_INLINE_IMAGE_BYTES:
            return None, f"inline image of {len(data) * 3 // 4} bytes not shown"
        return Image(mime, data_b64=data), None
    return None, None


def _finish_reason(response: Mapping[str, Any]) -> str | None:
    candidates = response.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], Mapping):
        reason = candidates[0].get("finishReason")
        return str(reason) if reason is not None else None
    return None


def _tokens(response: Mapping[str, Any]) -> Tokens | None:
    usage = response.get("usageMetadata")
    if isinstance(usage, Mapping):
        return Tokens(
            _as_int(usage.get("promptTokenCount")),
            _as_int(usage.get("candidatesTokenCount")),
            _as_int(usage.get("totalTokenCount")),
        )
    count = _as_int(response.get("tokenCount"))
    return Tokens(count, None, count) if count is not None else None


def _embedding_size(response: Mapping[str, Any]) -> int | None:
    embedding = response.get("embedding")
    if isinstance(embedding, Mapping) and isinstance(embedding.get("values"), list):
        return len(embedding["values"])
    return None


def result_view(line: int, raw: bytes) -> ResultView:
    """The view of one raw results line (never raises: a bad line is shown as a note)."""
    try:
        data = loads_bounded(raw)  # too deep or too long: a ValueError, not a crash
    except ValueError:
        return ResultView(line, None, notes=("this line is not JSON",))
    if not isinstance(data, Mapping):
        return ResultView(line, None, notes=("this line is not a JSON object",))
    key = data.get("key")
    key = str(key) if key is not None else None
    failure = data.get("error") if data.get("error") is not None else data.get("status")
    if failure is not None:
        return ResultView(line, key, error=_error_text(failure))
    response = data.get("response")
    if not isinstance(response, Mapping):
        return ResultView(line, key, notes=("no response in this line",))
    texts: list[str] = []
    images: list[Image] = []
    notes: list[str] = []
    for part in _parts_of(response):
        if not isinstance(part, Mapping):
            continue
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(str(part["text"]))
        image, note = _image_of(part)
        if image is not None:
            images.append(image)
        if note is not None:
            notes.append(note)
    return ResultView(
        line,
        key,
        texts=tuple(texts),
        images=tuple(images),
        finish_reason=_finish_reason(response),
        tokens=_tokens(response),
        embedding=_embedding_size(response),
        notes=tuple(notes),
    )


def _part_text(part: object) -> str | None:
    if not isinstance(part, Mapping):
        return None
    if isinstance(part.get("text"), str):
        return str(part["text"])
    for name in ("file_data", "fileData", "inline_data", "inlineData"):
        media = part.get(name)
        if isinstance(media, Mapping):
            where = media.get("path") or media.get("file_uri") or media.get("fileUri")
            mime = media.get("mime_type") or media.get("mimeType") or "data"
            return f"[{mime}{': ' + str(where) if where else ''}]"
    return None


def prompt_text(request: object) -> str:
    """The text a request sends (its parts' texts; media shown as `[mime: path]`)."""
    if not isinstance(request, Mapping):
        return ""
    contents = request.get("contents")
    if isinstance(contents, list):
        turns = [c for c in contents if isinstance(c, Mapping)]
    elif isinstance(request.get("content"), Mapping):
        turns = [request["content"]]
    else:
        turns = []
    pieces: list[str] = []
    for turn in turns:
        parts = turn.get("parts")
        for part in parts if isinstance(parts, list) else ():
            text = _part_text(part)
            if text:
                pieces.append(text)
    return "\n".join(pieces)


def input_prompt(raw: bytes) -> tuple[str | None, str]:
    """(key, prompt text) of one input JSONL line: `{"key": ..., "request": {...}}`."""
    try:
        data = loads_bounded(raw)  # too deep or too long: a ValueError, not a crash
    except ValueError:
        return None, ""
    if not isinstance(data, Mapping):
        return None, ""
    key = data.get("key")
    return (str(key) if key is not None else None), prompt_text(data.get("request"))


def inline_prompts(requests: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Key -> prompt text of a manifest's inline requests (unnamed ones: `request-<n>`)."""
    found: dict[str, str] = {}
    for index, item in enumerate(requests):
        if "request" in item and "key" in item:
            found[str(item["key"])] = prompt_text(item["request"])
        else:
            found[f"request-{index + 1}"] = prompt_text(item)
    return found


def is_failure(raw: bytes) -> bool:
    """Whether a raw results line is an error, without decoding most lines."""
    if b'"error"' not in raw and b'"status"' not in raw:
        return False
    try:
        data = loads_bounded(raw)  # too deep or too long: a ValueError, not a crash
    except ValueError:
        return True
    return isinstance(data, Mapping) and (
        data.get("error") is not None or data.get("status") is not None
    )


def text_matcher(query: str) -> Callable[[bytes], bool]:
    """A case-insensitive test of a raw line for `query` (as written, or JSON-escaped)."""
    plain = query.lower().encode("utf-8")
    escaped = json.dumps(query)[1:-1].lower().encode("utf-8")

    def matches(raw: bytes) -> bool:
        lowered = raw.lower()
        return plain in lowered or escaped in lowered

    return matches
