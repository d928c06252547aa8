"""A trusted endpoint that echoes the request it was sent (the API key header among it) back in
every part of its answer a message could quote: the status line, an error's message, a field
of a listing, a TLS handshake that fails. With `-vv`, `--debug` and `--format json`, the key
reaches no output and no file of the project."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.live.endpoint import TRUST_VARIABLE

from .conftest import SECRET, run_cli, write_project

pytestmark = pytest.mark.secret_scan


def _echo_answer(mode: str, head: bytes) -> bytes:
    """The answer of `mode` with the request's head in it."""
    said = head.decode("latin-1").replace("\r\n", " | ")
    if mode == "status line":
        return said.encode("latin-1") + b"\r\n\r\n"
    if mode == "error message":
        error = {"error": {"code": 403, "message": said, "status": "PERMISSION_DENIED"}}
        return _http(403, json.dumps(error).encode())
    if mode == "listing field":
        body: dict[str, object] = {
            "operations": [{"name": "batches/x", "metadata": {"createTime": _key_line(head)}}],
            "files": [{"name": "files/x", "sizeBytes": said}],
            "name": "models/gemini-2.5-flash",
            "supportedGenerationMethods": ["batchGenerateContent"],
        }
        return _http(200, json.dumps(body).encode())
    if mode == "header":
        return (
            b"HTTP/1.1 500 Broken\r\nX-Echo: "
            + said.encode("latin-1")
            + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
    raise AssertionError(mode)


def _key_line(head: bytes) -> str:
    """The request's API key header line: a message quoting its first 40 characters would
    carry part of the key, which no redaction of the whole key finds."""
    lines = head.decode("latin-1").split("\r\n")
    return next((line for line in lines if line.lower().startswith("x-goog-api-key")), "")


def _http(status: int, body: bytes) -> bytes:
    head = b"HTTP/1.1 %d Echo\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
    return head % (status, len(body)) + b"Connection: close\r\n\r\n" + body


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request.recv(65536)
        if data[:1] == b"\x16":  # a TLS ClientHello: answer in plain text, the handshake fails
            self.request.sendall(b"HTTP/1.1 400 Plain\r\nContent-Length: 0\r\n\r\n")
            return
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0]
        self.server.heads.append(head)  # type: ignore[attr-defined]
        self.request.sendall(_echo_answer(self.server.mode, head))  # type: ignore[attr-defined]


@pytest.fixture
def echo() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.heads = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # the broken answers are retried with the adapter's real backoff (~15 s)
@pytest.mark.parametrize(
    "mode", ["status line", "error message", "listing field", "header", "TLS handshake"]
)
def test_a_server_echoing_the_key_gets_it_into_no_output_or_file(
    echo: socketserver.ThreadingTCPServer, tmp_path: Path, mode: str
) -> None:
    echo.mode = mode  # type: ignore[attr-defined]
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n")
    scheme = "https" if mode == "TLS handshake" else "http"
    url = f"{scheme}://127.0.0.1:{echo.server_address[1]}"
    env = {"GEMINI_API_KEY": SECRET, "RECONCILER_ENDPOINT": url, TRUST_VARIABLE: url}
    outputs = []
    for args in (
        ("-vv", "--debug", "plan", "--out", str(root / "plan.bin")),
        ("-vv", "apply", "--auto-approve", "--format", "json", "--no-wait"),
    ):
        result = run_cli(root, *args, env=env)
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "Internal error" not in result.stderr, result.stderr[-2000:]
        outputs.append(result.stdout + result.stderr)

    if scheme == "http":  # the key went out, and came back in the answers
        heads = echo.heads  # type: ignore[attr-defined]
        assert heads and all(SECRET.encode() in head for head in heads)
    assert all(SECRET not in text for text in outputs), next(t for t in outputs if SECRET in t)
    assert all(SECRET[:16] not in text for text in outputs)
    leaked = [p for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []
