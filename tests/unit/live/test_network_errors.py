"""Network failures say which host could not be reached and why, in one line with a hint."""

from __future__ import annotations

import asyncio
import socket

import httpx2

from reconciler.errors import TransientServiceError
from reconciler.live.boundary import Boundary


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


def _refused_async(url: str) -> httpx2.TransportError:
    async def get() -> httpx2.TransportError:
        async with httpx2.AsyncClient() as client:
            try:
                await client.get(url)
            except httpx2.TransportError as exc:
                return exc
        raise AssertionError("the connection was not refused")

    return asyncio.run(get())


def test_a_refused_connection_names_the_host_and_the_cause() -> None:
    exc = _refused_async(f"http://127.0.0.1:{_closed_port()}/v1beta/batches")

    error = Boundary(secrets=()).error(exc, "batches.list")

    assert isinstance(error, TransientServiceError)
    assert str(error) == "cannot reach 127.0.0.1: connection refused (ConnectError) (batches.list)"
    assert error.hint is not None and "--endpoint emulator" in error.hint


def test_a_failed_name_lookup_says_so() -> None:
    request = httpx2.Request("GET", "https://generativelanguage.googleapis.com/v1beta/batches")
    exc = httpx2.ConnectError("[Errno -2] Name or service not known", request=request)
    exc.__cause__ = socket.gaierror(-2, "Name or service not known")

    error = Boundary(secrets=()).error(exc, "batches.list")

    assert error.message == (
        "cannot reach generativelanguage.googleapis.com: name lookup failed "
        "(name or service not known) (ConnectError)"
    )


def test_a_timeout_names_the_host() -> None:
    request = httpx2.Request("GET", "https://generativelanguage.googleapis.com/v1beta/batches")
    exc = httpx2.ReadTimeout("timed out", request=request)

    error = Boundary(secrets=()).error(exc, "batches.get")

    assert error.message == "generativelanguage.googleapis.com did not answer in time (ReadTimeout)"


def test_the_key_never_appears_in_a_network_error() -> None:
    secret = "AIzaSy-secret-key-0123456789"
    request = httpx2.Request("GET", f"https://example.test/v1beta/batches?key={secret}")
    exc = httpx2.ConnectError(f"failed for {secret}", request=request)

    error = Boundary(secrets=(secret,)).error(exc, "batches.list")

    assert secret not in str(error)
