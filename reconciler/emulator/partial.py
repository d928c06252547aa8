"""Partial responses: the `fields` system parameter (`$fields`, or the `X-Goog-FieldMask`
header) keeps only the named fields of a JSON answer, as every Google REST API does
(https://cloud.google.com/apis/docs/system-parameters).

A selector is a comma-separated list of paths (`name,metadata/state` or `metadata.state`), each
of which may end in a group (`files(name,sizeBytes),nextPageToken`); `*` keeps every field of
its level. A list is filtered element by element. Names match the answer's camelCase keys,
written in either spelling. Errors and media are never filtered.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Selection = dict[str, "Selection | None"]
"""Field name → what to keep below it (None: the whole value)."""

_COMPACT = (",", ":")
_TOKEN = re.compile(r"\s*([A-Za-z0-9_@*]+|[(),/.])")


class SelectorError(ValueError):
    """A `fields` value that is not a selector."""


MAX_DEPTH = 64
"""How deep a selector may nest (no answer of the API is a tenth as deep); deeper is refused as a
400 rather than recursed into."""


def parse(selector: str) -> Selection:
    tokens = _tokens(selector)
    selection, at = _list(tokens, 0, 0)
    if at < len(tokens):
        raise SelectorError(f"unexpected {tokens[at]!r} in fields {selector!r}")
    return selection


def _tokens(selector: str) -> list[str]:
    found, at, end = [], 0, len(selector.rstrip())
    while at < end:
        match = _TOKEN.match(selector, at)
        if match is None:
            raise SelectorError(f"invalid character at {at} in fields {selector!r}")
        found.append(match.group(1))
        at = match.end()
    return found


# The parser walks `tokens` by index (slicing the list at every step made a long selector cost
# its length squared, on the event loop) and counts its depth.
def _list(tokens: list[str], at: int, depth: int) -> tuple[Selection, int]:
    selection: Selection = {}
    while True:
        path, at = _path(tokens, at, depth)
        _merge(selection, path)
        if at >= len(tokens) or tokens[at] != ",":
            return selection, at
        at += 1


def _path(tokens: list[str], at: int, depth: int) -> tuple[Selection, int]:
    if depth > MAX_DEPTH:
        raise SelectorError(f"fields nested deeper than {MAX_DEPTH} levels")
    if at >= len(tokens) or not _is_name(tokens[at]):
        raise SelectorError(
            f"expected a field name, got {tokens[at] if at < len(tokens) else 'the end'!r}"
        )
    name, at = tokens[at], at + 1
    if at < len(tokens) and tokens[at] in ("/", "."):
        below, at = _path(tokens, at + 1, depth + 1)
        return {name: below}, at
    if at < len(tokens) and tokens[at] == "(":
        below, at = _list(tokens, at + 1, depth + 1)
        if at >= len(tokens) or tokens[at] != ")":
            raise SelectorError("unclosed '(' in fields")
        return {name: below}, at + 1
    return {name: None}, at


def _is_name(token: str) -> bool:
    return token not in ("(", ")", ",", "/", ".")


def _merge(into: Selection, path: Selection) -> None:
    for name, below in path.items():
        if name in into and into[name] is None:
            continue
        if below is None or name not in into:
            into[name] = below
        else:
            existing = into[name]
            assert existing is not None
            _merge(existing, below)


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def apply(value: Any, selection: Selection) -> Any:
    """`value` with only the selected fields kept."""
    if isinstance(value, list):
        return [apply(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        for name, below in selection.items():
            if name == "*" or key in (name, _camel(name)):
                kept[key] = item if below is None else apply(item, below)
                break
    return kept


def selector_of(scope: Scope) -> str | None:
    """The `fields` the request names (query first, then the header), or None."""
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    for name, value in query:
        if name in ("fields", "$fields"):
            return str(value)
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-goog-fieldmask":
            return str(value.decode("latin-1"))
    return None


class PartialResponses:
    """ASGI middleware: filter a successful JSON answer by the request's `fields`; a selector
    that does not parse is a 400 before the route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        selector = selector_of(scope) if scope["type"] == "http" else None
        if not selector or str(scope.get("path", "")).startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        try:
            selection = parse(selector)
        except SelectorError as exc:
            await _send_json(send, 400, _error(str(exc)))
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def filtered(message: Message) -> None:
            # Only a successful JSON answer is held and filtered; anything else (errors, media
            # of any size) streams through untouched.
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] == 200 and _is_json(message):
                    start = message
                else:
                    await send(message)
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = json.dumps(
                apply(json.loads(b"".join(chunks)), selection), separators=_COMPACT
            ).encode()
            headers = [(n, v) for n, v in start["headers"] if n.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, filtered)


def _is_json(start: Message) -> bool:
    return any(
        n.lower() == b"content-type" and v.startswith(b"application/json")
        for n, v in start["headers"]
    )


def _error(message: str) -> dict[str, Any]:
    return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body, separators=_COMPACT).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
