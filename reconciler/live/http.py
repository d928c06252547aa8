"""The async HTTP client the SDK is handed: httpx2 over the adapter's own HTTP/1.1 connections.

httpx2's client stays (the SDK takes one through its public `HttpOptions(httpx_async_client=...)`,
so its JSON calls and the adapter's streamed transfers share one pool); its transport is ours
(connection.py): h11 over asyncio protocols instead of httpcore2 over anyio. An apply makes two
or three small requests per resource and httpcore2 cost ~1.5 ms of CPU for each; a download
still moves in 1 MiB pieces (httpcore2 read 64 KiB at a time, which made a 1 GiB download
client-bound: 3.9-4.6 s against a plain blocking GET's 2.7-2.9 s; benchmarks/RESULTS.md).

Proxies: a client given a transport does not read proxies from the environment (httpx2), as
before; the endpoints reconciler talks to are reached directly.

It must not import google.genai.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Final

import httpx2

from reconciler.live.connection import MAX_ANSWER_BYTES, READ_BYTES, Pool

__all__ = ["READ_BYTES", "LeanTransport", "shared_ssl_context", "wide_read_client"]

MAX_CONNECTIONS: Final = 100
"""Requests in flight at once (httpx2's default limit)."""
MAX_IDLE: Final = 20
"""Idle connections kept for reuse (httpx2's default keep-alive limit)."""
IDLE_EXPIRY: Final = 5.0
"""Seconds an idle connection is kept (httpx2's default; servers close theirs about then)."""


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The one TLS context of the process, for the pool here and the SDK's own clients.

    Building one loads the trust store (about 60 ms of CPU), and the SDK built two more per
    client: six per `apply`. The same rule as the SDK's: SSL_CERT_FILE / SSL_CERT_DIR when set,
    else httpx2's default context.
    """
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return httpx2.create_ssl_context()


class LeanTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport over connection.py's pool: HTTP/1.1, certificates checked with the
    process's one TLS context, httpx2's default limits."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._pool = Pool(
            ssl_context or shared_ssl_context,
            max_connections=MAX_CONNECTIONS,
            max_idle=MAX_IDLE,
            idle_expiry=IDLE_EXPIRY,
            max_answer_bytes=max_answer_bytes,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self._pool.request(request)

    async def aclose(self) -> None:
        self._pool.close()


def wide_read_client() -> httpx2.AsyncClient:
    """A new async client over `LeanTransport`; the caller closes it (`aclose`)."""
    return httpx2.AsyncClient(transport=LeanTransport())
