"""The adapter's own HTTP/1.1 client against a hostile or broken server: every case ends in one
clear ServiceError, retried only where sending again is safe, and never in a traceback, a hang
or memory that grows with what the server sends.

Each test runs the real adapter (the real SDK over `live/http.py`'s transport) against a raw
asyncio server in the same event loop that answers whatever the test tells it to, bytes as they
go on the wire. The server counts the requests it read, which is how a test sees a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httpx2
import pytest

from reconciler.clock import FakeClock
from reconciler.errors import PermanentServiceError, ServiceError, TransientServiceError
from reconciler.live.client import build_client
from reconciler.live.connection import MIN_ANSWER_RATE
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, GeminiAdapter
from reconciler.live.http import LeanTransport

KEY: Final = "AIzaSy-hostile-server-secret-0123456789"
ATTEMPTS: Final = 3
HEAD: Final = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
"""The server answers one request a connection, and says so."""
GUARD: Final = 60.0
"""Seconds a test waits for the adapter before calling it hung (a test failure, not a hang)."""

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Call = Callable[[GeminiAdapter], Awaitable[object]]


class Server:
    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.requests = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            await self.serve(reader, writer)
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def hostile(serve: Serve) -> AsyncIterator[Server]:
    server = Server(serve)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listening.close()


def _adapter(
    url: str, *, timeout: float = 2.0, max_answer_bytes: int | None = None
) -> GeminiAdapter:
    endpoint = Endpoint(EndpointKind.URL, url, KEY, "v1beta")
    settings = AdapterSettings(
        retry_attempts=ATTEMPTS, retry_initial_delay=0.0, retry_jitter=0.0, request_timeout=timeout
    )
    transport = (
        LeanTransport()
        if max_answer_bytes is None
        else LeanTransport(max_answer_bytes=max_answer_bytes)
    )
    http = httpx2.AsyncClient(transport=transport)
    return GeminiAdapter(
        build_client(endpoint, settings, http=http),
        clock=FakeClock(),
        settings=settings,
        secrets=(KEY,),
        http=http,
    )


async def _listing(adapter: GeminiAdapter) -> object:
    return await adapter.snapshot(include_files=False)


async def _get(adapter: GeminiAdapter) -> object:
    return await adapter.get_job("batches/x")


async def _create(adapter: GeminiAdapter) -> object:
    return await adapter.create_job(
        model="gemini-2.5-flash", task="generate", display_name="d", file_name="files/in"
    )


IDEMPOTENT: Final = {"batches.list": _listing, "batches.get": _get}


def _failure(serve: Serve, call: Call, **adapter: Any) -> tuple[ServiceError, int]:
    """The ServiceError `call` ends in against a server answering with `serve`, and how many
    requests the server read."""

    async def main() -> tuple[ServiceError, int]:
        async with hostile(serve) as server:
            client = _adapter(server.url, **adapter)
            try:
                await asyncio.wait_for(call(client), GUARD)
            except ServiceError as exc:
                return exc, server.requests
            finally:
                await client.aclose()
        raise AssertionError("the call succeeded")

    error, requests = asyncio.run(main())
    assert KEY not in str(error)
    return error, requests


def _answer(body: bytes) -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    return serve


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x00\xff SSH-2.0-OpenSSH_9.6 " + b"x" * 5_000 + b"\r\n\r\n")
    await writer.drain()


async def _status_line_alone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    await writer.drain()


async def _huge_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"p" * (1 << 20) + b"\r\n\r\n")
    await writer.drain()


async def _closed_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(HEAD + b'Content-Length: 1000\r\n\r\n{"operations": [')
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(GUARD * 2)


BROKEN: Final = {
    "garbage instead of a status line": (_garbage, "illegal status line"),
    "a status line and no headers": (_status_line_alone, "peer unexpectedly closed"),
    "a head over the limit": (_huge_head, "receive buffer too long"),
    "a body cut short": (_closed_mid_body, "received 16 bytes, expected 1000"),
}


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("call", IDEMPOTENT)
def test_a_broken_answer_to_a_read_is_retried_then_named_with_its_host(
    call: str, case: str
) -> None:
    serve, words = BROKEN[case]

    error, requests = _failure(serve, IDEMPOTENT[call])

    assert isinstance(error, TransientServiceError)
    assert error.message.startswith("127.0.0.1 sent a broken answer: ")
    assert words in error.message and error.call == call
    assert len(error.message) < 300  # the garbage is not echoed whole
    assert requests == ATTEMPTS


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_answer_to_a_create_is_not_resent_and_may_have_made_the_job(case: str) -> None:
    serve, words = BROKEN[case]

    error, requests = _failure(serve, _create)

    assert isinstance(error, TransientServiceError) and error.ambiguous
    assert words in error.message
    assert requests == 1


@pytest.mark.parametrize("call", IDEMPOTENT)
def test_a_server_that_never_answers_is_a_read_timeout_retried(call: str) -> None:
    error, requests = _failure(_silent, IDEMPOTENT[call], timeout=0.2)

    assert isinstance(error, TransientServiceError)
    assert error.message == "127.0.0.1 did not answer in time (ReadTimeout)"
    assert requests == ATTEMPTS


def test_a_server_trickling_its_answer_times_out_as_a_silent_one_does() -> None:
    """Each byte comes well within the read timeout, so only the answer's pace ends the wait;
    without it the request would last as long as the server likes (here: past the guard)."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + b"Content-Length: 100000\r\n\r\n")
        for _ in range(int(GUARD * 20)):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    error, requests = _failure(trickle, _listing, timeout=0.2)

    assert isinstance(error, TransientServiceError)
    assert error.message == "127.0.0.1 did not answer in time (ReadTimeout)"
    assert isinstance(error.__cause__, httpx2.ReadTimeout)
    assert f"slower than {MIN_ANSWER_RATE >> 10} KiB/s" in str(error.__cause__)
    assert requests == ATTEMPTS


def test_a_create_that_times_out_is_not_resent_and_may_have_made_the_job() -> None:
    error, requests = _failure(_silent, _create, timeout=0.2)

    assert isinstance(error, TransientServiceError) and error.ambiguous
    assert requests == 1


async def _endless_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b'{"operations": [' * 4096
    while True:  # until the client hangs up
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()


LIMIT: Final = 1 << 20


@pytest.mark.parametrize(
    "serve",
    [_endless_chunks, _answer(b'{"operations": [], "pad": "' + b"x" * (50 << 20) + b'"}')],
    ids=["a chunked body that never ends", "a 50 MB body"],
)
@pytest.mark.parametrize("call", IDEMPOTENT)
def test_an_answer_over_the_limit_is_refused_unread_and_not_asked_again(
    call: str, serve: Serve
) -> None:
    error, requests = _failure(serve, IDEMPOTENT[call], max_answer_bytes=LIMIT)

    assert isinstance(error, PermanentServiceError)
    assert (
        error.message
        == f"malformed answer: AnswerTooLargeError: the answer is over {LIMIT:,} bytes"
    )
    assert requests == 1


def test_an_endless_answer_to_a_create_may_have_made_the_job() -> None:
    error, requests = _failure(_endless_chunks, _create, max_answer_bytes=LIMIT)

    assert isinstance(error, TransientServiceError) and error.ambiguous
    assert "over 1,048,576 bytes" in error.message
    assert requests == 1


def test_a_media_download_is_not_held_to_the_answer_limit() -> None:
    """File bytes (`alt=media`) are streamed to disk by their reader: only JSON answers, read
    whole into memory, have the limit."""
    body = bytes(range(256)) * (3 * LIMIT // 256)

    async def main() -> bytes:
        transport = LeanTransport(max_answer_bytes=LIMIT)
        async with (
            hostile(_answer(body)) as server,
            httpx2.AsyncClient(transport=transport) as http,
        ):
            response = await http.get(f"{server.url}/v1beta/files/x:download?alt=media")
            with pytest.raises(ValueError, match="over 1,048,576 bytes"):
                await http.get(f"{server.url}/v1beta/files/x")
            return response.content

    assert asyncio.run(main()) == body


DEEP: Final = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT: Final = b'{"operations": [' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}"


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("call", IDEMPOTENT)
def test_json_nested_too_deeply_is_a_malformed_answer_not_a_crash(call: str, body: bytes) -> None:
    error, requests = _failure(_answer(body), IDEMPOTENT[call])

    assert isinstance(error, PermanentServiceError)
    assert error.message == "malformed answer: JSON nested too deeply"
    assert requests == 1


def test_json_nested_too_deeply_after_a_create_may_have_made_the_job() -> None:
    error, requests = _failure(_answer(DEEP), _create)

    assert isinstance(error, TransientServiceError) and error.ambiguous
    assert error.message == "malformed answer: JSON nested too deeply"
    assert requests == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<html>bad gateway</html>", "JSONDecodeError"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"operations": {"a": 1}}', "`operations` is not a list"),
        (b'{"operations": [{"name": 5}]}', "batch job without a name"),
        (b'{"operations": [{"name": "batches/a", "metadata": {"createTime": 7}}]}', "timestamp"),
        (b'{"operations": [], "nextPageToken": 7}', "`nextPageToken` is not a string"),
    ],
    ids=[
        "not JSON",
        "not an object",
        "operations not a list",
        "a name that is a number",
        "a time that is a number",
        "a page token that is a number",
    ],
)
def test_a_listing_page_of_the_wrong_shape_is_a_malformed_answer(body: bytes, words: str) -> None:
    """A page read as the last one, or a job read without its fields, would make jobs look gone
    from the service: an answer that is not a listing is an error, never a shorter listing."""
    error, requests = _failure(_answer(body), _listing)

    assert isinstance(error, PermanentServiceError)
    assert error.message.startswith("malformed answer: ") and words in error.message
    assert "\n" not in error.message
    assert requests == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "batches/x", "metadata": {"output": [1]}}',
        b'{"name": "batches/x", "metadata": {"output": {"inlinedResponses": 5}}}',
        b'{"name": ["batches/x"]}',
    ],
    ids=["output a list", "inline responses a number", "name a list"],
)
def test_a_job_whose_fields_have_other_shapes_is_a_malformed_answer(body: bytes) -> None:
    """The SDK's converters raise AttributeError or TypeError on such answers: a ServiceError,
    not an internal error."""
    error, requests = _failure(_answer(body), _get)

    assert isinstance(error, PermanentServiceError)
    assert error.message.startswith("malformed answer: ")
    assert requests == 1


def _error_answer(status: int, body: bytes) -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 %d Odd\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        writer.write(head % (status, len(body)) + body)
        await writer.drain()

    return serve


@pytest.mark.parametrize(
    "body",
    [b'{"error": "boom"}', b"[1, 2]", b"null", b'{"error": {"message": 5, "status": 7}}'],
    ids=["error a string", "a list", "null", "fields of other types"],
)
@pytest.mark.parametrize(("status", "transient"), [(503, True), (400, False)])
def test_an_error_answer_of_any_shape_is_its_status(
    body: bytes, status: int, transient: bool
) -> None:
    error, requests = _failure(_error_answer(status, body), _listing)

    assert error.status_code == status
    assert error.message.startswith(f"HTTP {status}")
    assert isinstance(error, TransientServiceError) is transient
    assert requests == (ATTEMPTS if transient else 1)


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"name": 5}', b'{"name": "batches/x", "metadata": {"createTime": "noon"}}'],
    ids=["no name", "a name that is a number", "a time that is not one"],
)
def test_a_create_answered_with_success_but_no_readable_job_may_have_made_it(body: bytes) -> None:
    """A 200 says the job was made: an answer that cannot be read is no refusal."""
    error, requests = _failure(_answer(body), _create)

    assert isinstance(error, TransientServiceError) and error.ambiguous
    assert error.message.startswith("malformed answer: ")
    assert requests == 1


def test_what_an_answer_held_is_scrubbed_of_the_key_in_a_malformed_answer() -> None:
    """The words of a malformed answer never quote what the answer held: a value cut short
    could hold part of the key, which no redaction of the whole key finds."""
    for held in (KEY, "x" * 20 + KEY):
        body = b'{"operations": [{"name": "batches/x", "metadata": {"createTime": "%s"}}]}'
        error, _ = _failure(_answer(body % held.encode()), _listing)

        assert error.message == f"malformed answer: not a timestamp ({len(held)} characters)"
        assert KEY[:12] not in error.message
