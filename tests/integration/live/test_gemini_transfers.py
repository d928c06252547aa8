"""The adapter's byte transfers: the SDK builds the requests, the adapter streams the bodies.

Against the emulator for the protocol (both API versions, call counts), and against a tiny
scripted HTTP server for what the emulator cannot do on demand: a body cut off mid-stream, an
upload session that holds part of the file, an error that echoes the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.clock import SystemClock
from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.errors import PermanentServiceError, TransientServiceError
from reconciler.live import transfer
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, GeminiAdapter, connect

API_KEY = "AIzaSy-transfer-secret-0123456789"

FAST = AdapterSettings(
    retry_attempts=4,
    retry_initial_delay=0.0,
    retry_max_delay=0.0,
    retry_jitter=0.0,
    request_timeout=10.0,
    transfer_attempts=3,
)


def adapter_for(base_url: str, api_version: str = "v1beta") -> GeminiAdapter:
    endpoint = Endpoint(EndpointKind.URL, base_url, API_KEY, api_version)
    return connect(endpoint, clock=SystemClock(), settings=FAST)


def payload(size: int) -> bytes:
    line = b'{"key": "k", "response": {"text": "some words about bread"}}\n'
    return (line * (size // len(line) + 1))[:size]


# --- against the emulator ----------------------------------------------------------------------


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    # These tests round-trip bytes through upload and download; the service (and the emulator
    # by default) serves only generated files, so the lenient switch lets an upload come back.
    with running_emulator(
        tmp_path / "emulator", job_seconds=0.1, download_uploaded_files=True
    ) as emu:
        yield emu


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_upload_is_one_start_and_one_request_and_download_one_get(
    emulator: EmulatorHandle, tmp_path: Path, api_version: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(payload(3 * (8 << 20) + 123))  # the SDK would have sent 4 chunks
    dest = tmp_path / "copy.jsonl"

    async def main() -> tuple[Any, tuple[str, int]]:
        adapter = adapter_for(emulator.base_url, api_version)
        try:
            file = await adapter.upload_file(source, display_name="big", mime_type="jsonl")
            # Uploaded files cannot be downloaded from the real service; the emulator allows it.
            return file, await adapter.download_file(file.name, dest)
        finally:
            await adapter.aclose()

    file, (digest, size) = asyncio.run(main())
    assert file.size_bytes == source.stat().st_size and file.display_name == "big"
    assert dest.read_bytes() == source.read_bytes()
    assert (digest, size) == (hashlib.sha256(source.read_bytes()).hexdigest(), file.size_bytes)
    calls = emulator.calls()
    assert (calls["files.upload_start"], calls["files.upload_chunk"], calls["files.download"]) == (
        1,
        1,
        1,
    )


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_a_small_upload_is_one_multipart_request_whatever_its_bytes(
    emulator: EmulatorHandle, tmp_path: Path, api_version: str
) -> None:
    # Bytes that look like multipart framing must come back unchanged.
    content = b'{"key": "k"}\r\n--boundary\r\n\r\n' + payload(transfer.ONE_REQUEST_BYTES - 40)
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    dest = tmp_path / "copy.jsonl"
    sent: list[tuple[int, int | None]] = []

    async def main() -> Any:
        adapter = adapter_for(emulator.base_url, api_version)
        try:
            file = await adapter.upload_file(
                source,
                display_name="small",
                mime_type="jsonl",
                progress=lambda done, total: sent.append((done, total)),
            )
            await adapter.download_file(file.name, dest)
            return file
        finally:
            await adapter.aclose()

    file = asyncio.run(main())
    assert source.stat().st_size <= transfer.ONE_REQUEST_BYTES
    assert file.size_bytes == len(content) and file.display_name == "small"
    assert dest.read_bytes() == content
    assert sent[0] == (0, len(content)) and sent[-1] == (len(content), len(content))
    calls = emulator.calls()
    assert calls.get("files.upload_multipart") == 1
    assert "files.upload_start" not in calls and "files.upload_chunk" not in calls


def test_a_transfer_of_several_read_pieces_round_trips_through_the_adapters_client(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """3 MiB up and down over the adapter's own connections (live/connection.py reads up to
    1 MiB at a time): the bytes come back whole and in order."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(payload(3 << 20))

    async def main() -> tuple[str, int]:
        adapter = adapter_for(emulator.base_url)
        try:
            file = await adapter.upload_file(source, display_name="x", mime_type="jsonl")
            return await adapter.download_file(file.name, tmp_path / "copy.jsonl")
        finally:
            await adapter.aclose()

    digest, size = asyncio.run(main())
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest()
    assert size == 3 << 20
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()


def test_without_the_sdk_internals_the_public_sdk_calls_are_used(
    emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "sdk_request", lambda client, method, path: None)
    source = tmp_path / "in.jsonl"
    source.write_bytes(payload((8 << 20) + 5))
    dest = tmp_path / "copy.jsonl"

    async def main() -> tuple[str, int]:
        adapter = adapter_for(emulator.base_url)
        try:
            file = await adapter.upload_file(source, display_name="x", mime_type="jsonl")
            copied = await adapter.download_file(file.name, dest)
            await adapter.delete_file(file.name)
            await adapter.delete_file(file.name)  # gone already: still fine
            assert await adapter.get_file(file.name) is None
            return copied
        finally:
            await adapter.aclose()

    digest, size = asyncio.run(main())
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest() and size == dest.stat().st_size
    assert emulator.calls()["files.upload_chunk"] == 2, "the SDK's 8 MiB chunks"
    assert emulator.calls()["files.delete"] == 2


# --- against a scripted server -------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Reply = Callable[[Seen, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request; returns False to close the connection afterwards."""


@dataclass
class Script:
    replies: list[Reply]
    seen: list[Seen] = field(default_factory=list)


async def _serve(
    script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while script.replies:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (h.partition(":") for h in header_lines if h)
            }
            seen = Seen(method, target, headers, b"")
            script.seen.append(seen)
            if not await script.replies.pop(0)(seen, reader, writer):
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> None:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body) if length is None else length}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


async def run_scripted(
    script: Script, body: Callable[[GeminiAdapter, str], Awaitable[Any]], api_version: str
) -> Any:
    server = await asyncio.start_server(lambda r, w: _serve(script, r, w), "127.0.0.1", 0)
    base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    adapter = adapter_for(base_url, api_version)
    try:
        return await body(adapter, base_url)
    finally:
        await adapter.aclose()
        server.close()


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_download_cut_mid_stream_restarts_and_hashes_only_the_complete_copy(
    tmp_path: Path, api_version: str
) -> None:
    content = payload(3 << 20)
    dest = tmp_path / "out.jsonl"

    async def cut(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        respond(writer, 200, content[: len(content) // 2], length=len(content))
        await writer.drain()
        return False  # the connection drops halfway through the body

    async def whole(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        respond(writer, 200, content)
        await writer.drain()
        return False

    script = Script([cut, whole])
    digest, size = asyncio.run(
        run_scripted(script, lambda a, _: a.download_file("files/batch-abc", dest), api_version)
    )
    assert (digest, size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert dest.read_bytes() == content
    assert [s.target for s in script.seen] == [
        f"/{api_version}/files/batch-abc:download?alt=media"
    ] * 2
    assert all(s.headers["x-goog-api-key"] == API_KEY for s in script.seen)


def test_a_download_refused_with_429_more_times_than_transfer_attempts_still_completes(
    tmp_path: Path,
) -> None:
    """A 429 is the service's answer, not a broken transfer: it gets a JSON call's retries."""
    content = payload(1 << 20)
    dest = tmp_path / "out.jsonl"

    async def busy(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        body = b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}'
        respond(writer, 429, body, headers={"Content-Type": "application/json"})
        await writer.drain()
        return False

    async def whole(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        respond(writer, 200, content)
        await writer.drain()
        return False

    refusals = FAST.transfer_attempts + 2
    replies: list[Reply] = [busy] * refusals
    replies.append(whole)
    script = Script(replies)
    digest, _ = asyncio.run(
        run_scripted(script, lambda a, _: a.download_file("files/batch-429", dest), "v1beta")
    )
    assert digest == hashlib.sha256(content).hexdigest()
    assert len(script.seen) == refusals + 1


def test_a_download_broken_mid_body_gives_up_after_transfer_attempts(tmp_path: Path) -> None:
    content = payload(1 << 20)

    async def cut(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        respond(writer, 200, content[:1000], length=len(content))
        await writer.drain()
        return False

    script = Script([cut] * (FAST.transfer_attempts + 5))
    with pytest.raises(TransientServiceError):
        asyncio.run(
            run_scripted(script, lambda a, _: a.download_file("files/b", tmp_path / "o"), "v1beta")
        )
    assert len(script.seen) == FAST.transfer_attempts


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_upload_resumes_from_the_offset_the_session_reports(
    tmp_path: Path, api_version: str
) -> None:
    content = payload((2 << 20) + 77)
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    received = bytearray()
    kept = 1 << 20  # what the session holds after the first request broke off

    async def start(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        seen.body = await reader.readexactly(int(seen.headers["content-length"]))
        respond(writer, 200, b"{}", {"X-Goog-Upload-URL": upload_url[0]})
        return True

    async def broken(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        received.extend(await reader.readexactly(kept))
        respond(writer, 503, b'{"error": {"code": 503, "message": "busy"}}')
        await writer.drain()
        return False

    async def query(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        respond(
            writer,
            200,
            headers={"X-Goog-Upload-Status": "active", "X-Goog-Upload-Size-Received": str(kept)},
        )
        return True

    async def rest(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        received.extend(await reader.readexactly(int(seen.headers["content-length"])))
        file = {"name": "files/abc123", "sizeBytes": str(len(received)), "state": "ACTIVE"}
        body = json.dumps({"file": file}).encode()
        respond(writer, 200, body, {"X-Goog-Upload-Status": "final"})
        return True

    upload_url: list[str] = []

    async def body(adapter: GeminiAdapter, base_url: str) -> Any:
        upload_url.append(f"{base_url}/upload/{api_version}/files?upload_id=u1")
        return await adapter.upload_file(source, display_name="in", mime_type="jsonl")

    script = Script([start, broken, query, rest])
    file = asyncio.run(run_scripted(script, body, api_version))
    assert file.name == "files/abc123" and bytes(received) == content
    first, *uploads = script.seen
    assert first.target == f"/upload/{api_version}/files"
    assert first.headers["x-goog-upload-command"] == "start"
    assert first.headers["x-goog-upload-header-content-length"] == str(len(content))
    assert json.loads(first.body) == {
        "file": {"display_name": "in", "mime_type": "jsonl", "size_bytes": len(content)}
    }
    assert [
        (s.headers["x-goog-upload-command"], s.headers.get("x-goog-upload-offset")) for s in uploads
    ] == [
        ("upload, finalize", "0"),
        ("query", None),
        ("upload, finalize", str(kept)),
    ]
    assert all(s.target == f"/upload/{api_version}/files?upload_id=u1" for s in uploads)
    assert all("x-goog-api-key" not in s.headers for s in uploads), (
        "the upload id is the credential"
    )


def test_a_download_error_that_echoes_the_key_is_redacted(tmp_path: Path) -> None:
    async def refuse(
        seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        message = f"API key {seen.headers['x-goog-api-key']} not valid"
        respond(writer, 400, json.dumps({"error": {"code": 400, "message": message}}).encode())
        return False

    with pytest.raises(PermanentServiceError) as caught:
        asyncio.run(
            run_scripted(
                Script([refuse]),
                lambda a, _: a.download_file("files/x", tmp_path / "out"),
                "v1beta",
            )
        )
    assert caught.value.status_code == 400 and caught.value.call == "files.download"
    assert API_KEY not in str(caught.value) and "<redacted>" in str(caught.value)


def test_transfers_report_their_bytes_from_zero_to_the_whole_file(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(payload(3 << 20))
    sent: list[tuple[int, int | None]] = []
    received: list[tuple[int, int | None]] = []

    async def main() -> None:
        adapter = adapter_for(emulator.base_url)
        try:
            file = await adapter.upload_file(
                source,
                display_name="p",
                mime_type="jsonl",
                progress=lambda done, total: sent.append((done, total)),
            )
            await adapter.download_file(
                file.name,
                tmp_path / "copy.jsonl",
                progress=lambda done, total: received.append((done, total)),
            )
        finally:
            await adapter.aclose()

    asyncio.run(main())
    size = 3 << 20
    for calls in (sent, received):
        assert calls[0] == (0, size) and calls[-1] == (size, size)
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_progress_is_told_at_most_four_times_a_second_and_at_the_end() -> None:
    from reconciler.clock import FakeClock

    clock = FakeClock()
    told: list[int] = []

    async def chunks() -> Any:
        for _ in range(10):
            clock.advance(0.1)
            yield b"x" * 10

    async def main() -> list[bytes]:
        counted = transfer.counted(chunks(), lambda done, _: told.append(done), clock, total=100)
        return [chunk async for chunk in counted]

    assert len(asyncio.run(main())) == 10
    # Every 0.25 s on the clock (three chunks of 0.1 s), plus the first and the last call.
    assert told == [0, 30, 60, 90, 100]


def test_the_adapter_reads_each_jobs_request_counts_from_the_service(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(job_seconds=3600.0, pending_fraction=0.0)
    lines = [
        {"key": f"k{i}", "request": {"contents": [{"parts": [{"text": "hi"}]}]}} for i in range(3)
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))

    async def main() -> tuple[Any, Any]:
        adapter = adapter_for(emulator.base_url)
        try:
            file = await adapter.upload_file(source, display_name="in", mime_type="jsonl")
            job = await adapter.create_job(
                model="gemini-2.5-flash", task="generate", display_name="j", file_name=file.name
            )
            live = await adapter.snapshot(include_files=False)
            return live.jobs[job.name], await adapter.get_job(job.name)
        finally:
            await adapter.aclose()

    listed, got = asyncio.run(main())
    for job in (listed, got):
        assert job.stats is not None and job.stats.total == 3
        assert 0 <= job.stats.done <= 3
