"""live/http.py and connection.py: the adapter's HTTP/1.1 client, against a real local server.

Each test runs the httpx2 client the adapter uses (`wide_read_client`) over real sockets to a
stdlib HTTP/1.1 server, so framing, keep-alive, flow control and failures are the wire's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from reconciler.live import http

BIG = bytes(range(256)) * (4 << 12)  # 4 MiB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[tuple[str, int]]
    received: list[bytes]

    def setup(self) -> None:
        super().setup()
        self.server.connections.append(self.client_address)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        if self.path == "/big":
            self._answer(BIG)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hel", b"lo"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/hang-up":
            self.close_connection = True  # nothing sent at all
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")
            self.close_connection = True
        elif self.path == "/slow":
            self.server.released.wait(10)  # type: ignore[attr-defined]
            self._answer(b"late")
        else:
            self._answer(b"hello")

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if not size:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(body)  # type: ignore[attr-defined]
        self._answer(str(len(body)).encode())

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up (a timeout test)
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[tuple[str, ThreadingHTTPServer]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.connections = []  # type: ignore[attr-defined]
    httpd.received = []  # type: ignore[attr-defined]
    httpd.released = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.released.set()  # type: ignore[attr-defined]
        httpd.shutdown()
        httpd.server_close()


def test_a_request_through_the_transport_is_answered(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, _ = server

    async def main() -> tuple[int, bytes, str]:
        async with http.wide_read_client() as client:
            response = await client.get(f"{url}/")
            return response.status_code, response.content, response.http_version

    assert asyncio.run(main()) == (200, b"hello", "HTTP/1.1")


def test_requests_one_after_another_reuse_one_connection(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, httpd = server

    async def main() -> list[bytes]:
        async with http.wide_read_client() as client:
            return [(await client.get(f"{url}/")).content for _ in range(5)]

    assert asyncio.run(main()) == [b"hello"] * 5
    assert len(httpd.connections) == 1  # type: ignore[attr-defined]


def test_a_connection_the_server_said_it_closes_is_not_reused(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, httpd = server

    async def main() -> list[bytes]:
        async with http.wide_read_client() as client:
            first = (await client.get(f"{url}/close")).content
            return [first, (await client.get(f"{url}/")).content]

    assert asyncio.run(main()) == [b"ok", b"hello"]
    assert len(httpd.connections) == 2  # type: ignore[attr-defined]


def test_a_large_body_arrives_whole_in_pieces_of_at_most_a_mebibyte(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, _ = server

    async def main() -> list[bytes]:
        async with http.wide_read_client() as client, client.stream("GET", f"{url}/big") as got:
            return [piece async for piece in got.aiter_raw()]

    pieces = asyncio.run(main())
    assert b"".join(pieces) == BIG
    assert max(len(p) for p in pieces) <= http.READ_BYTES


def test_a_chunked_answer_is_read_to_its_end_and_the_connection_reused(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, httpd = server

    async def main() -> list[bytes]:
        async with http.wide_read_client() as client:
            return [(await client.get(f"{url}/chunked")).content for _ in range(2)]

    assert asyncio.run(main()) == [b"hello", b"hello"]
    assert len(httpd.connections) == 1  # type: ignore[attr-defined]


def test_a_streamed_request_body_arrives_whole(server: tuple[str, ThreadingHTTPServer]) -> None:
    url, httpd = server

    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield BIG

    async def main() -> bytes:
        async with http.wide_read_client() as client:
            sized = await client.post(f"{url}/", content=b"abc")
            streamed = await client.post(f"{url}/", content=body())
            return sized.content + b" " + streamed.content

    assert asyncio.run(main()) == b"3 " + str(3 * len(BIG)).encode()
    assert httpd.received == [b"abc", BIG * 3]  # type: ignore[attr-defined]


def test_a_body_closed_before_its_end_gives_its_connection_up(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, httpd = server

    async def main() -> bytes:
        async with http.wide_read_client() as client:
            async with client.stream("GET", f"{url}/big") as got:
                async for _ in got.aiter_raw():
                    break
            return (await client.get(f"{url}/")).content

    assert asyncio.run(main()) == b"hello"
    assert len(httpd.connections) == 2  # type: ignore[attr-defined]


def test_a_server_that_hangs_up_without_answering_is_a_protocol_error(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, _ = server

    async def main() -> None:
        async with http.wide_read_client() as client:
            await client.get(f"{url}/hang-up")

    with pytest.raises(httpx2.RemoteProtocolError):
        asyncio.run(main())


def test_an_answer_slower_than_the_read_timeout_is_a_read_timeout(
    server: tuple[str, ThreadingHTTPServer],
) -> None:
    url, _ = server

    async def main() -> None:
        async with http.wide_read_client() as client:
            await client.get(f"{url}/slow", timeout=httpx2.Timeout(5, read=0.2))

    with pytest.raises(httpx2.ReadTimeout) as caught:
        asyncio.run(main())
    assert caught.value.request.url.path == "/slow"


def test_a_refused_connection_is_a_connect_error_carrying_the_os_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        async with http.wide_read_client() as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(httpx2.ConnectError) as caught:
        asyncio.run(main())
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


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


def test_plain_http_requests_build_no_tls_context(
    server: tuple[str, ThreadingHTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plan against the emulator speaks plain http: the trust store is not loaded for it.
    url, _ = server
    http.shared_ssl_context.cache_clear()
    built = 0
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        nonlocal built
        built += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    monkeypatch.setattr(httpx2, "create_ssl_context", counting)

    async def main() -> int:
        async with http.wide_read_client() as client:
            return (await client.get(f"{url}/")).status_code

    assert asyncio.run(main()) == 200
    assert built == 0


@pytest.fixture
def tls_server(tmp_path: Any) -> Iterator[tuple[str, ssl.SSLContext]]:
    """An HTTPS server for `localhost` with a self-signed certificate that offers HTTP/2 first,
    and a client context that trusts the certificate."""
    cryptography = pytest.importorskip("cryptography")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    assert cryptography
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.connections = []  # type: ignore[attr-defined]
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert_file))
    client_context.set_alpn_protocols(["h2", "http/1.1"])  # as a client with HTTP/2 would
    try:
        yield f"https://localhost:{httpd.server_address[1]}", client_context
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_https_request_is_answered_over_http_1_1_with_the_certificate_checked(
    tls_server: tuple[str, ssl.SSLContext],
) -> None:
    url, trusting = tls_server

    async def main(context: ssl.SSLContext) -> bytes:
        transport = http.LeanTransport(ssl_context=context)
        async with httpx2.AsyncClient(transport=transport) as client:
            return (await client.get(f"{url}/")).content

    assert asyncio.run(main(trusting)) == b"hello"
    with pytest.raises(httpx2.ConnectError) as caught:
        asyncio.run(main(ssl.create_default_context()))  # the self-signed certificate: refused
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
