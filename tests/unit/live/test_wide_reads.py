"""live/http.py: the adapter's connections read up to 1 MiB at a time, and nothing else's do."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore2
import httpx2
import pytest

from reconciler.live import http


class Recording(httpcore2.AsyncNetworkStream):
    def __init__(self) -> None:
        self.asked: list[int] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


def test_a_connection_reads_a_mebibyte_when_httpcore_asks_for_64_kib() -> None:
    inner = Recording()
    stream = http._WideStream(inner)

    async def main() -> None:
        await stream.read(64 << 10)
        tls = await stream.start_tls(ssl.create_default_context())
        await tls.read(64 << 10)

    asyncio.run(main())
    assert inner.asked == [http.READ_BYTES, http.READ_BYTES]


def test_httpcore_failures_arrive_as_httpx_failures() -> None:
    for raw, mapped in (
        (httpcore2.ReadTimeout, httpx2.ReadTimeout),
        (httpcore2.ConnectError, httpx2.ConnectError),
        (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    ):
        with pytest.raises(mapped), http._httpx_errors():
            raise raw("x")


def test_a_request_through_the_transport_is_answered(unused_port_server: str) -> None:
    async def main() -> tuple[int, bytes]:
        async with http.wide_read_client() as client:
            response = await client.get(unused_port_server)
            return response.status_code, response.content

    assert asyncio.run(main()) == (200, b"hello")


@pytest.fixture
def unused_port_server() -> Any:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_an_idle_connection_is_usable_until_its_peer_closes_and_its_socket_is_looked_up_once() -> (
    None
):
    """The pool asks every idle connection "still usable?" on every request: one lookup each."""
    import socket

    class Socketed(Recording):
        def __init__(self, sock: socket.socket) -> None:
            super().__init__()
            self.sock = sock
            self.lookups = 0

        def get_extra_info(self, info: str) -> Any:
            self.lookups += 1
            return self.sock if info == "socket" else None

    ours, theirs = socket.socketpair()
    inner = Socketed(ours)
    stream = http._WideStream(inner)
    try:
        assert [stream.get_extra_info("is_readable") for _ in range(3)] == [False] * 3
        theirs.close()  # the server hung up: the connection must not be reused
        assert stream.get_extra_info("is_readable") is True
        assert stream.get_extra_info("socket") is ours
        assert inner.lookups == 1
    finally:
        ours.close()


def test_every_client_of_the_process_shares_one_tls_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loading the trust store costs ~60 ms of CPU; the SDK built two per client, apply has two."""
    from reconciler.clock import FakeClock
    from reconciler.live.client import connect
    from reconciler.live.endpoint import resolve_endpoint

    http.shared_ssl_context.cache_clear()
    built = 0
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        nonlocal built
        built += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    endpoint = resolve_endpoint(
        "http://127.0.0.1:9", api_version="v1beta", environ={}, emulator_base_url=None
    )

    async def main() -> None:
        for _ in range(2):
            adapter = connect(endpoint, clock=FakeClock())
            await adapter.aclose()

    asyncio.run(main())
    assert built <= 1
