"""Query parameters of the Developer API routes, bound as Google's front end binds them.

A query parameter is either one of the platform's system parameters (`key`, `alt`, `fields`,
`prettyPrint`, … and their `$`-prefixed spellings: https://cloud.google.com/apis/docs/system-
parameters), or a field of the method's request message (`pageSize` of ListFiles, in either
spelling). Anything else is refused before the method runs: 400 INVALID_ARGUMENT, `Invalid
JSON payload received. Unknown name "x": Cannot bind query parameter. Field 'x' could not be
found in request message.` A value the field cannot hold is the parser's `Invalid value at
'page_size' (TYPE_INT32), "abc"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.datastructures import QueryParams

SYSTEM = frozenset(
    {
        "access_token",
        "oauth_token",
        "uploadType",
        "upload_protocol",
        "$.xgafv",
        "$ct",
        "$httpMethod",
        "$apiVersion",
        "$outputDefaults",
        "$unique",
        "$requestReason",
    }
    | {
        spelling
        for name in ("alt", "callback", "fields", "key", "prettyPrint", "quotaUser", "userProject")
        for spelling in (name, "$" + name)
    }
)
ALT = frozenset({"json", "media", "proto", "sse"})
"""`alt` values the platform defines (json is the default; sse is a JSON stream)."""


def _both(*snake: str) -> frozenset[str]:
    camel = (re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name) for name in snake)
    return frozenset(snake) | frozenset(camel)


_LIST = _both("page_size", "page_token")
FIELDS: dict[str, frozenset[str]] = {
    "files.list": _LIST,
    "models.list": _LIST,
    "batches.list": _LIST | _both("filter", "return_partial_success"),
    "batches.update": _both("update_mask"),
    # the resumable session's URL, as the upload server hands it out
    "files.upload_chunk": frozenset({"upload_id"}),
}
"""Request-message fields each route binds from the query; routes not named bind none."""
CHECKED = frozenset(
    {
        "files.list",
        "models.list",
        "batches.list",
        "batches.update",
        "files.upload_chunk",
        "files.upload_start",
        "files.upload_multipart",
        "files.get",
        "files.delete",
        "files.download",
        "files.register",
        "files.unknown",
        "models.get",
        "models.unknown",
        "batches.create_generate",
        "batches.create_embed",
        "batches.get",
        "batches.cancel",
        "batches.delete",
        "batches.unknown",
    }
)
"""The Developer API routes whose query is checked (the Vertex and admin routes are not)."""


def unbound(params: QueryParams, route: str) -> list[str]:
    """The query parameter names `route` cannot bind, in request order."""
    if route not in CHECKED:
        return []
    allowed = SYSTEM | FIELDS.get(route, frozenset())
    return _unique(name for name in params if name not in allowed)


def unbound_message(names: list[str]) -> str:
    return "\n".join(
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter.'
        f" Field '{name}' could not be found in request message."
        for name in names
    )


def alt(params: QueryParams) -> str:
    """The response format asked for (`alt` or `$alt`), `json` by default."""
    return params.get("alt") or params.get("$alt") or "json"


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen
