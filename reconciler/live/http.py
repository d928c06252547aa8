"""The async HTTP client the SDK is handed: httpx2 over an httpcore2 pool that reads 1 MiB at a time.

httpcore2 reads a socket at most 64 KiB at a time (`READ_NUM_BYTES` on its connection
classes). A download then costs one pass through the connection, h11 and the stream iterator
per 64 KiB, which made the client, not the network, the limit of a 1 GiB download: 3.9-4.6 s
against a plain blocking GET's 2.7-2.9 s, and 2.8 s with 1 MiB reads (benchmarks/RESULTS.md).

The read size is set here for this one client, through httpcore2's public extension point (a
network backend, whose streams decide how much one read returns) -- not by changing httpcore2's
class attribute, which would change every client in the process. A read returns what has
arrived, so JSON calls are unaffected. The SDK takes the client through its public
`HttpOptions(httpx_async_client=...)`, so its JSON calls and the adapter's streamed transfers
share this pool.

Only this module imports httpcore2; it must not import google.genai.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import socket
import ssl
import typing
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Final

import httpcore2
import httpx2

READ_BYTES: Final = 1 << 20
"""Most bytes one socket read may return (httpcore2 asks for 64 KiB)."""

# Most specific first: the first class an httpcore2 failure is an instance of names the httpx2
# class raised for it, as httpx2's own transport does (its mapping helper is private).
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx2.HTTPError]], ...]] = (
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.ProxyError, httpx2.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Re-raise httpcore2 failures as the httpx2 ones the SDK and the adapter catch."""
    try:
        yield
    except Exception as exc:
        for raw, mapped in _ERRORS:
            if isinstance(exc, raw):
                raise mapped(str(exc)) from exc
        raise


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


class _WideStream(httpcore2.AsyncNetworkStream):
    """A connection whose reads may return up to `READ_BYTES` whatever the caller asks for.

    It also answers httpcore2's "is this idle connection still usable" question from a socket
    looked up once, with one `poll` system call on a poller registered once: the pool asks it
    of every idle connection for every request (some 14,000 times in an apply of 100 small
    jobs), and anyio builds a dict of its attributes (a getpeername call among them) to answer
    each time.
    """

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._poller: select.poll | None = None
        if self._socket is not None:
            self._poller = select.poll()
            self._poller.register(self._socket, select.POLLIN)

    def _readable(self) -> bool:
        """Whether an idle connection has something to read (the server closed it), without
        waiting: httpcore2's own check."""
        if self._socket is None or self._poller is None or self._socket.fileno() < 0:
            return True
        return bool(self._poller.poll(0))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, READ_BYTES), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return _WideStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return self._readable()
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


class _WideBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's asyncio backend, its connections wrapped in `_WideStream`."""

    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _WideStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _WideStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Body(httpx2.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        closing = getattr(self._stream, "aclose", None)
        if closing is not None:
            with _httpx_errors():
                await closing()


class WideReadTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport over an httpcore2 pool whose connections read 1 MiB at a time.

    What httpx2's `AsyncHTTPTransport` does for a direct connection (HTTP/1.1, default limits,
    certificate checks), with the network backend as the one difference. Proxies from the
    environment are still honoured: httpx2 routes those through its own proxy transports.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or shared_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_WideBackend(),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        raw = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = await self._pool.handle_async_request(raw)
        assert isinstance(answer.stream, typing.AsyncIterable)
        return httpx2.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def wide_read_client() -> httpx2.AsyncClient:
    """A new async client over `WideReadTransport`; the caller closes it (`aclose`)."""
    return httpx2.AsyncClient(transport=WideReadTransport())
