"""HTTP/1.1 connections for the adapter's client: h11 over an asyncio protocol, and their pool.

What httpcore2 did for the adapter, in the few steps one request needs: the request's bytes go
to the socket as h11 frames them, and the answer is read as the event loop delivers it, without
anyio's cancel scopes around every read and write, or a pool that re-examines every idle
connection for every request. An apply makes two or three small requests per resource; httpx2's
stack over httpcore2 cost ~2 ms of CPU each, most of an apply's CPU (benchmarks/RESULTS.md,
"Session 7"). h11 still parses and frames every message (content length, chunked, keep-alive),
so the wire behaviour is httpcore2's.

Reads gather what has arrived, up to `READ_BYTES` per step, so a large download moves in MiB
pieces; reading stops while more than that waits unread (flow control), and writes wait while
the socket's buffer is full. Every failure is raised as the httpx2 exception httpcore2 would
have been mapped to (ConnectError, ReadTimeout, RemoteProtocolError, ...), so retries and
messages (boundary.py) see the same classes.

Only http.py uses this module; it must not import google.genai.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import h11
import httpx2

READ_BYTES: Final = 1 << 20
"""Most bytes handed to the parser in one step, and the unread bytes at which reading pauses."""

MAX_HEADER_BYTES: Final = 100 << 10
"""Largest response head accepted (httpcore2's limit)."""

MAX_ANSWER_BYTES: Final = 512 << 20
"""Largest body of an answer that is not a media download (`alt=media`), all of which the SDK
or the adapter reads into memory: a `batches.list` page is well under a MiB, and the largest
JSON answer is a job's inline responses. A server that sends more (or a chunked body that never
ends) is refused instead of filling memory."""

MIN_ANSWER_RATE: Final = 64 << 10
"""Bytes a second an answer must average once its read timeout has passed: the timeout bounds
each wait for the next piece, so a server trickling a byte at a time would otherwise hold a
request forever. A 1 GiB download may take 4.5 hours at this pace; one slower is broken."""

Origin = tuple[bytes, bytes, int]
"""(scheme, host, port) of a connection."""


def _timeouts(request: httpx2.Request) -> dict[str, float | None]:
    timeout = request.extensions.get("timeout")
    return timeout if isinstance(timeout, dict) else {}


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: a request at a time, kept open between requests."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.idle_since = 0.0
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._transport: asyncio.Transport | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._reading_paused = False
        self._closed = False
        """The peer closed its side, or the connection was lost or closed."""
        self._lost: Exception | None = None
        self._eof_told = False
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._answer_started = 0.0
        self._answer_bytes = 0
        """When the current request was written, and the bytes of its answer read since: the
        answer's pace (`MIN_ANSWER_RATE`)."""

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_BYTES and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._lost = exc
        self._wake_reader()
        self._writing_paused = False
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    # -- use ----------------------------------------------------------------------------------

    def reusable(self, now: float, expiry: float) -> bool:
        """Whether an idle connection may carry another request: the peer has not closed it
        (a server drops idle connections after a few seconds) and it was idle under `expiry`."""
        return (
            not self._closed
            and self._transport is not None
            and not self._transport.is_closing()
            and self._h11.our_state is h11.IDLE
            and now - self.idle_since < expiry
        )

    def speaks_http11(self) -> bool:
        """Whether TLS settled on HTTP/1.1 (or on nothing: then HTTP/1.1 it is)."""
        tls = self._transport.get_extra_info("ssl_object") if self._transport else None
        return tls is None or tls.selected_alpn_protocol() in (None, "http/1.1")

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def finish(self) -> bool:
        """After a response was read to its end: ready the connection for the next request;
        False when it cannot take one (either side asked to close)."""
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            return not self._closed
        return False

    async def send(self, request: httpx2.Request) -> h11.Response:
        """Write `request` (its body streamed) and read the answer's head."""
        timeouts = _timeouts(request)
        write_timeout = timeouts.get("write")
        self._write(
            self._h11.send(
                h11.Request(
                    method=request.method, target=request.url.raw_path, headers=request.headers.raw
                )
            ),
            request,
        )
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        async for chunk in request.stream:
            if chunk:
                self._write(self._h11.send(h11.Data(data=chunk)), request)
                await self._drain(write_timeout, request)
        self._write(self._h11.send(h11.EndOfMessage()), request)
        await self._drain(write_timeout, request)
        self._answer_started = self.loop.time()
        self._answer_bytes = 0
        read_timeout = timeouts.get("read")
        while True:
            event = await self.next_event(read_timeout, request)
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise httpx2.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )

    def _write(self, data: bytes | None, request: httpx2.Request) -> None:
        if self._transport is None or self._transport.is_closing():
            raise httpx2.WriteError(self._lost_words("connection closed"), request=request)
        if data:
            self._transport.write(data)

    async def _drain(self, timeout: float | None, request: httpx2.Request) -> None:
        if not self._writing_paused:
            return
        self._writer = self.loop.create_future()
        await self._wait(self._writer, timeout, httpx2.WriteTimeout, request)
        if self._closed and self._lost is not None:
            raise httpx2.WriteError(self._lost_words("connection lost"), request=request)

    async def next_event(self, timeout: float | None, request: httpx2.Request) -> object:
        """The next h11 event of the answer, reading as needed."""
        h11_connection = self._h11
        while True:
            try:
                event = h11_connection.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx2.RemoteProtocolError(str(exc), request=request) from exc
            if event is not h11.NEED_DATA:
                return event
            if self._chunks:
                data = self._take()
                self._answer_bytes += len(data)
                h11_connection.receive_data(data)
            elif self._closed:
                if self._lost is not None:
                    raise httpx2.ReadError(self._lost_words("connection lost"), request=request)
                if self._eof_told:
                    raise httpx2.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    )
                self._eof_told = True
                h11_connection.receive_data(b"")
            else:
                self._reader = self.loop.create_future()
                wait = self._read_wait(timeout)
                slow = wait is not None and timeout is not None and wait < timeout
                words = (
                    f"the answer came slower than {MIN_ANSWER_RATE >> 10} KiB/s" if slow else None
                )
                await self._wait(self._reader, wait, httpx2.ReadTimeout, request, words)

    def _read_wait(self, timeout: float | None) -> float | None:
        """How long the next read may wait: the read timeout, or less when the answer so far
        is behind `MIN_ANSWER_RATE` by the end of it (a trickle times out as a silence does)."""
        if timeout is None:
            return None
        pace_end = self._answer_started + timeout + self._answer_bytes / MIN_ANSWER_RATE
        return max(0.0, min(timeout, pace_end - self.loop.time()))

    def _take(self) -> bytes:
        """What has arrived, up to `READ_BYTES` joined (one chunk as it came)."""
        chunks = self._chunks
        data = chunks.popleft()
        if chunks and len(data) < READ_BYTES:
            parts = [data]
            size = len(data)
            while chunks and size + len(chunks[0]) <= READ_BYTES:
                part = chunks.popleft()
                parts.append(part)
                size += len(part)
            data = b"".join(parts)
        self._buffered -= len(data)
        if self._reading_paused and self._buffered <= READ_BYTES and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def _wait(
        self,
        future: asyncio.Future[None],
        timeout: float | None,
        error: type[httpx2.TimeoutException],
        request: httpx2.Request,
        words: str | None = None,
    ) -> None:
        if timeout is None:
            await future
            return
        timer = self.loop.call_later(timeout, _expire, future)
        try:
            await future
        except _Expired:
            raise error(words or f"timed out after {timeout:g} s", request=request) from None
        finally:
            timer.cancel()

    def _lost_words(self, default: str) -> str:
        return str(self._lost) if self._lost is not None and str(self._lost) else default


class _Expired(Exception):
    """A wait's timer fired."""


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class Pool:
    """Connections by origin: an idle one is reused (the most recently used first), else a new
    one is opened; at most `max_connections` requests at once, `max_idle` connections kept."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        *,
        max_connections: int = 100,
        max_idle: int = 20,
        idle_expiry: float = 5.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        """`ssl_context`: the TLS context of https connections, or what builds it at the first
        one (loading the trust store costs ~60 ms of CPU, which a run that speaks only plain
        http -- the emulator -- need not pay)."""
        self._tls = ssl_context
        self._ssl: ssl.SSLContext | None = None
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[Connection]] = {}
        self._max_idle = max_idle
        self._expiry = idle_expiry
        self._idle_count = 0
        self._max_answer = max_answer_bytes

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = self._tls if isinstance(self._tls, ssl.SSLContext) else self._tls()
            # HTTP/1.1 only: offered so a server that speaks HTTP/2 does not pick it (httpcore2
            # set the same on every connect); checked again on each connection (`_open`).
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    async def request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` on a connection of its origin; the answer's body is read as it is
        iterated, and the connection returns to the pool when the body is closed."""
        await self._acquire(request)
        try:
            connection = await self._connection(request)
        except BaseException:
            self._slots.release()
            raise
        try:
            head = await connection.send(request)
        except BaseException:
            connection.close()
            self._slots.release()
            raise
        return httpx2.Response(
            status_code=head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(self, connection, request, None if _media(request) else self._max_answer),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def _acquire(self, request: httpx2.Request) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        timeout = _timeouts(request).get("pool")
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            raise httpx2.PoolTimeout("no connection free in time", request=request) from None

    async def _connection(self, request: httpx2.Request) -> Connection:
        url = request.url
        origin: Origin = (url.raw_scheme, url.raw_host, url.port or _default_port(url.raw_scheme))
        idle = self._idle.get(origin)
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.loop is loop and connection.reusable(now, self._expiry):
                return connection
            connection.close()
        return await self._open(origin, request)

    async def _open(self, origin: Origin, request: httpx2.Request) -> Connection:
        scheme, host, port = origin
        if scheme not in (b"http", b"https"):
            raise httpx2.UnsupportedProtocol(
                f"unsupported URL scheme {scheme.decode(errors='replace')!r}", request=request
            )
        name = host.decode("ascii")
        tls = self._context() if scheme == b"https" else None
        sni = request.extensions.get("sni_hostname")
        connection = Connection(origin)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: connection,
                    name,
                    port,
                    ssl=tls,
                    server_hostname=(sni or name) if tls is not None else None,
                ),
                _timeouts(request).get("connect"),
            )
        except TimeoutError:
            connection.close()
            raise httpx2.ConnectTimeout(
                f"connecting to {name}:{port} timed out", request=request
            ) from None
        except OSError as exc:
            connection.close()
            raise httpx2.ConnectError(str(exc), request=request) from exc
        if not connection.speaks_http11():
            connection.close()
            raise httpx2.ConnectError(
                f"{name}:{port} chose a protocol other than HTTP/1.1", request=request
            )
        return connection

    def release(self, connection: Connection, reusable: bool) -> None:
        """A request's connection is free again (closed when it cannot be reused)."""
        self._slots.release()
        if not reusable or self._idle_count >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_count = 0


def _default_port(scheme: bytes) -> int:
    return 443 if scheme == b"https" else 80


def _media(request: httpx2.Request) -> bool:
    """Whether the request asks for a file's bytes (`alt=media`, Google's APIs' convention for a
    media download), which are streamed to disk, not read into memory."""
    alt: str | None = request.url.params.get("alt")
    return alt == "media"


class AnswerTooLargeError(ValueError):
    """An answer that is not a media download grew past its limit: the boundary words it as a
    malformed answer (not retried; after a create, one that may have made the job)."""


class _Body(httpx2.AsyncByteStream):
    """An answer's body, read from its connection as it is iterated."""

    def __init__(
        self, pool: Pool, connection: Connection, request: httpx2.Request, limit: int | None
    ) -> None:
        self._pool = pool
        self._connection: Connection | None = connection
        self._request = request
        self._limit = limit
        """Most bytes of body read (None: a media download, streamed to disk by its reader)."""
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        timeout = _timeouts(self._request).get("read")
        limit = self._limit
        read = 0
        try:
            while True:
                event = await connection.next_event(timeout, self._request)
                if isinstance(event, h11.Data):
                    read += len(event.data)
                    if limit is not None and read > limit:
                        raise AnswerTooLargeError(f"the answer is over {limit:,} bytes")
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    self._ended = True
                    break
        except BaseException:
            self._give_back()
            raise
        self._give_back()

    async def aclose(self) -> None:
        self._give_back()

    def _give_back(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection, self._ended and connection.finish())
