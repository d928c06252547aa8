"""What every route shares: the emulator's state, authentication and faults, request parsing.

Each handler authenticates, passes the call through fault injection (`guard`), then works on
the store in a worker thread (SQLite and file I/O must not block the event loop). A `Reject`
raised anywhere in a handler becomes its response (`endpoint`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from reconciler.emulator import query, wire
from reconciler.emulator.catalogue import Catalogue
from reconciler.emulator.faults import ConnectionRegistry, FaultInjector
from reconciler.emulator.rows import PageToken
from reconciler.emulator.settings import EmulatorSettings, SettingsHolder
from reconciler.emulator.store import Store

VERSIONS = frozenset({"v1", "v1beta", "v1alpha"})
"""The SDK defaults to v1 (pitfall 1); its embedding tests use v1alpha."""
MAX_PAGE_SIZE = 100

Handler = Callable[[Request], Awaitable[Response]]

_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity)."
    " Please use API Key or other form of API consumer identity to call this API."
)
_FAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred.",
    503: "The service is currently unavailable.",
}


class EmulatorState:
    """Everything the routes share: store, settings, faults, models, the server's connections."""

    def __init__(
        self, store: Store, settings: SettingsHolder, connections: ConnectionRegistry
    ) -> None:
        self.store = store
        self.settings = settings
        self.faults = FaultInjector(settings)
        self.connections = connections
        self.catalogue = Catalogue()
        self.clock: Callable[[], float] = time.time
        self.hashers: dict[str, tuple[int, Any]] = {}
        """upload_id → (bytes hashed, sha256 state): hashing as chunks arrive saves re-reading
        a 2 GB file at finalize; lost on restart, when finalize falls back to re-reading."""


class Reject(Exception):
    """Stop a handler and answer `response` instead."""

    def __init__(self, response: Response) -> None:
        self.response = response


def endpoint(handler: Handler) -> Handler:
    """Turn a `Reject` raised anywhere in a handler into its response, and a client that went
    away mid-body (an interrupted upload) into a quiet end instead of a logged traceback."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Reject as reject:
            return reject.response
        except ClientDisconnect:
            # Nobody reads this answer; what the handler kept of the body stays as the
            # service keeps a resumable session's bytes.
            return Response(status_code=499)

    return run


def pick(mapping: Any, *names: str) -> Any:
    """First present field among spellings: the service's proto-JSON parser takes camelCase
    and snake_case alike, and the SDK itself sends snake_case in two places (pitfall 7)."""
    if not isinstance(mapping, dict):
        return None
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


def base_url(request: Request) -> str:
    """The emulator as the client reached it: upload URLs must point here (pitfall 2)."""
    return str(request.base_url).rstrip("/")


def version(request: Request) -> str:
    found = str(request.path_params.get("version", "v1beta"))
    if found not in VERSIONS:
        raise Reject(wire.error(404, f"Unknown API version {found!r}"))
    return found


def page_size(request: Request, default: int) -> int:
    """The list call's `pageSize`: 0 or absent is the default, a larger one than the service
    serves is lowered to MAX_PAGE_SIZE, and a negative one is refused (Google's pagination
    rules, AIP-158: https://google.aip.dev/158)."""
    raw_size = request.query_params.get("pageSize") or request.query_params.get("page_size")
    try:
        size = int(raw_size) if raw_size else default
        if not -(2**31) <= size < 2**31:
            raise ValueError(raw_size)
    except ValueError as exc:
        description = f"Invalid value at 'page_size' (TYPE_INT32), {json.dumps(raw_size)}"
        raise Reject(wire.bad_request([("page_size", description)])) from exc
    if size < 0:
        raise Reject(wire.error(400, f"pageSize must not be negative, got {size}"))
    return min(size, MAX_PAGE_SIZE) if size > 0 else default


def page_args(
    request: Request, settings: EmulatorSettings, collection: str
) -> tuple[int, PageToken | None]:
    """The list call's page size and position. A token is good only for the collection whose
    list issued it (AIP-158): one from `files.list` sent to `batches.list` is refused, not read
    as a position among batches."""
    size = page_size(request, settings.page_size)
    token_text = request.query_params.get("pageToken") or request.query_params.get("page_token")
    if not token_text:
        return size, None
    try:
        raw = base64.urlsafe_b64decode(token_text.encode()).decode()
        issuer, _, inner = raw.partition("~")
        if issuer != collection:
            raise ValueError(token_text)
        return size, PageToken.decode(inner)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Reject(
            wire.bad_request([("page_token", f"Invalid page token {json.dumps(token_text)}.")])
        ) from exc


def next_page_token(collection: str, token: PageToken) -> str:
    """The `nextPageToken` of a page of `collection` (see `page_args`)."""
    return base64.urlsafe_b64encode(f"{collection}~{token.encode()}".encode()).decode()


MAX_REQUEST_BYTES = 20 * 1024 * 1024
"""The largest JSON request the service reads: inline batch requests must stay under 20 MB
(https://ai.google.dev/gemini-api/docs/batch-mode); larger ones get Google's payload error."""


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_REQUEST_BYTES:
        raise Reject(
            wire.error(400, f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
        )
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError: not JSON, not UTF-8, or an integer past Python's digit limit;
        # RecursionError: nested deeper than the parser goes. Google answers each with a 400.
        raise Reject(wire.error(400, f"Invalid JSON payload received. {exc}")) from exc


async def guard(state: EmulatorState, request: Request, route: str, *, auth: bool = True) -> None:
    """Count the call, apply the configured faults, then check the API key."""
    decision = state.faults.decide(route)
    if decision.latency > 0:
        await asyncio.sleep(decision.latency)
    if decision.drop:
        client = request.scope.get("client")
        peer = (str(client[0]), int(client[1])) if client else None
        if state.connections.close(peer):
            raise Reject(Response(status_code=200))  # written to an aborted socket: lost
        raise Reject(wire.error(500, "connection drop requested but the socket is unknown"))
    if decision.status is not None:
        details = None
        if decision.status == 429:
            delay = state.settings.get().retry_delay_seconds
            details = wire.quota_details("requests_per_minute", delay)
        raise Reject(wire.error(decision.status, _FAULT_MESSAGES[decision.status], details=details))
    if auth:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
        expected = state.settings.get().api_key
        if not key.strip():
            raise Reject(wire.error(403, _UNREGISTERED))
        if expected is not None and key.strip() != expected:
            raise Reject(
                wire.error(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    details=[wire.error_info("API_KEY_INVALID")],
                )
            )
    check_query(request, route)


def check_query(request: Request, route: str) -> None:
    """Refuse query parameters the route cannot bind, and response formats not served."""
    if names := query.unbound(request.query_params, route):
        raise Reject(wire.bad_request([(None, query.unbound_message([n])) for n in names]))
    if route not in query.CHECKED:
        return
    alt = query.alt(request.query_params)
    if alt not in query.ALT:
        raise Reject(
            wire.bad_request(
                [
                    (
                        "alt",
                        f"Invalid value at 'alt' (alt), {json.dumps(alt)}: expected one of"
                        " json, media, proto, sse",
                    )
                ]
            )
        )
    if alt == "proto":
        raise Reject(
            wire.error(501, "alt=proto (binary protobuf responses) is not served by the emulator.")
        )
