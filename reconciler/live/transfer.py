"""Uploads and downloads: the SDK's requests, with bodies streamed here (or the SDK's public calls).

The SDK would send an upload as 8 MiB requests, each read into memory first, and re-chunks a
download into 1 MiB pieces handed to a writer one await at a time (1.5x a plain streamed GET
at 1 GiB, benchmarks/RESULTS.md). Here the requests are the SDK's own (`sdk_request`: URL,
API version, headers) sent over the client's connection pool (http.py), and the bodies are
streamed: one `upload, finalize` request read from disk piece by piece, and a download gathered,
hashed and written while the disk writes back (writes.py). When the SDK's request builder is
not reachable, or the adapter was given no HTTP client, the SDK's public `files.upload` and
`files.download` are used instead.

Failures are left as the SDK, httpx2 or the disk raised them; the adapter maps them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Final, Protocol

import httpx2
from google import genai
from google.genai import types

from reconciler.clock import Clock
from reconciler.hashing import sha256_file
from reconciler.live.boundary import HTTP_FAILURES, is_transient, raise_for_status
from reconciler.live.convert import file_from_rest
from reconciler.live.retry import Retrier
from reconciler.live.sdk_request import SdkRequest, sdk_request
from reconciler.live.writes import HashingWriter, file_pieces, receive

logger = logging.getLogger(__name__)


class DownloadFollower(Protocol):
    """Reads a download's file while it is written, in another process (apply's results
    summary): when it follows, it hashes the bytes, so the receiving loop only receives."""

    def begin(self, dest: Path, length: int | None) -> bool:
        """A download attempt into `dest` of `length` bytes starts; True if it will follow it.
        Called on the event loop when `length` is at most SMALL_FILE_IO: it must not block
        then (a follower is for large files)."""
        ...

    def end(self, size: int) -> str:
        """All `size` bytes are written; the sha256 (hex) it computed over them.

        Raises:
            Exception: it could not follow to the end; the adapter then hashes the file itself.
        """
        ...

    def abandon(self) -> None:
        """The attempt failed: stop following."""
        ...


SMALL_FILE_IO: Final = 1 << 20
"""File-system work up to this many bytes runs on the event loop: a stat, an open, a truncate,
reading a small input. From the page cache it takes microseconds, where a thread hop costs
~0.15 ms of CPU and a wake-up of the loop (a 100-job apply made ~800 such hops). fsync, which
waits for the disk, always runs in a thread."""

Progress = Callable[[int, int | None], None]
"""Told (bytes done, bytes in all when known) while a transfer runs."""

ONE_REQUEST_BYTES: Final = 1 << 20
"""Files up to this size go up in one `multipart/related` request (Google's upload protocol,
`X-Goog-Upload-Protocol: multipart`) instead of a resumable session's start and upload: half
the calls for the small inputs most jobs have, and nothing to resume in a MiB."""

PROGRESS_EVERY: Final = 0.25
"""Seconds between two progress calls of one transfer, at most four a second: a call per
network chunk would cost more than the chunk."""


async def counted(
    chunks: AsyncIterator[bytes],
    progress: Progress | None,
    clock: Clock,
    *,
    start: int = 0,
    total: int | None = None,
) -> AsyncIterator[bytes]:
    """`chunks` passed through, `progress` told how many bytes went by (from `start`), at most
    every `PROGRESS_EVERY` seconds on `clock`, and once at the end."""
    if progress is None:
        async for chunk in chunks:
            yield chunk
        return
    done = start
    last = clock.monotonic()
    progress(done, total)
    async for chunk in chunks:
        done += len(chunk)
        now = clock.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            progress(done, total)
        yield chunk
    progress(done, total)


def _content_length(response: httpx2.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class Transfers:
    """The adapter's two byte transfers, each retried whole by `retrier.transfers()`."""

    def __init__(
        self, client: genai.Client, http: httpx2.AsyncClient | None, retrier: Retrier
    ) -> None:
        """`http` is the async client `client` was built with (client.py); None: the SDK's
        public calls are used."""
        self._client = client
        self._http = http
        self._retrier = retrier

    def _route(self, method: str, path: str) -> tuple[httpx2.AsyncClient, SdkRequest] | None:
        if self._http is None:
            return None
        built = sdk_request(self._client, method, path)
        return None if built is None else (self._http, built)

    # -- upload --------------------------------------------------------------------------------

    async def upload(
        self, path: Path, *, display_name: str, mime_type: str, progress: Progress | None = None
    ) -> types.File:
        """Upload `path` with the resumable protocol: a start request, then the whole file
        streamed from disk in one `upload, finalize` request to the upload URL.

        One streamed request is as valid as the SDK's 8 MiB chunks (the protocol bounds only
        non-final chunks, protocol §2.1) and measured 1.6-1.8 s -> ~1.1 s for 256 MiB. The
        start is the SDK's request for `upload/{api_version}/files`, retried as a JSON call;
        the upload URL it returns is used verbatim, with the start's upload headers and no
        API key, as the SDK sends its chunks. A transient failure restarts in a new session;
        a lost final answer can leave an orphan file, which expires after 48 h (protocol §5).
        """
        async for attempt in self._retrier.transfers():
            with attempt:
                route = self._route("post", "upload/{api_version}/files")
                if route is None:
                    # The SDK's call reports no progress: its start and its end, then.
                    size = path.stat().st_size
                    if progress is not None:
                        progress(0, size)
                    file = await self._client.aio.files.upload(
                        file=os.fspath(path),
                        config=types.UploadFileConfig(
                            display_name=display_name, mime_type=mime_type
                        ),
                    )
                    if progress is not None:
                        progress(size, size)
                else:
                    http, start = route
                    file = await self._upload_streamed(
                        http,
                        start,
                        path,
                        display_name=display_name,
                        mime_type=mime_type,
                        progress=progress,
                    )
        return file

    async def _upload_streamed(
        self,
        http: httpx2.AsyncClient,
        start: SdkRequest,
        path: Path,
        *,
        display_name: str,
        mime_type: str,
        progress: Progress | None,
    ) -> types.File:
        # A stat, and below a small file's read, on the loop (SMALL_FILE_IO).
        size = path.stat().st_size
        if size <= ONE_REQUEST_BYTES:
            return await self._upload_in_one(
                http,
                start,
                path,
                size,
                display_name=display_name,
                mime_type=mime_type,
                progress=progress,
            )
        headers = {
            "Content-Type": "application/json",
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime_type,
            "X-Goog-Upload-File-Name": path.name,
        }
        # The body the SDK's own start sends (files._create).
        body = {"file": {"display_name": display_name, "mime_type": mime_type, "size_bytes": size}}
        async for attempt in self._retrier.calls(
            is_transient, self._retrier.settings.retry_attempts
        ):
            with attempt:
                started = await http.post(
                    start.url,
                    json=body,
                    headers={**start.headers, **headers},
                    timeout=start.timeout,
                )
                await raise_for_status(started)
        upload_url = started.headers.get("x-goog-upload-url")
        if not upload_url:
            raise KeyError("the upload start answered without an X-Goog-Upload-URL")
        response = await self._send_upload(
            http, upload_url, path, size, headers, start.timeout, progress
        )
        status = response.headers.get("x-goog-upload-status")
        if status != "final":
            raise ValueError(f"the upload was not finalised (X-Goog-Upload-Status: {status})")
        return file_from_rest(response.json()["file"])

    async def _upload_in_one(
        self,
        http: httpx2.AsyncClient,
        start: SdkRequest,
        path: Path,
        size: int,
        *,
        display_name: str,
        mime_type: str,
        progress: Progress | None,
    ) -> types.File:
        """Upload a small file in one multipart request: the metadata the resumable start
        would send, then the bytes. Retried as the start is; as with a lost final answer of a
        resumable upload, a lost answer can leave an orphan file that expires (protocol §5)."""
        data = path.read_bytes()
        if len(data) != size:
            raise OSError(f"{path} changed while it was being uploaded")
        meta = {"file": {"display_name": display_name, "mime_type": mime_type, "size_bytes": size}}
        boundary = secrets.token_hex(16)
        while boundary.encode() in data:  # a boundary must not occur in the parts
            boundary = secrets.token_hex(16)
        body = b"".join(
            (
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(meta).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {mime_type}\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
        headers = {
            **{k: v for k, v in start.headers.items() if k.lower() != "content-type"},
            "Content-Type": f"multipart/related; boundary={boundary}",
            "X-Goog-Upload-Protocol": "multipart",
        }
        if progress is not None:
            progress(0, size)
        async for attempt in self._retrier.calls(
            is_transient, self._retrier.settings.retry_attempts
        ):
            with attempt:
                response = await http.post(
                    start.url, content=body, headers=headers, timeout=start.timeout
                )
                await raise_for_status(response)
        if progress is not None:
            progress(size, size)
        return file_from_rest(response.json()["file"])

    async def _send_upload(
        self,
        http: httpx2.AsyncClient,
        upload_url: str,
        path: Path,
        size: int,
        headers: Mapping[str, str],
        timeout: float | None,
        progress: Progress | None = None,
    ) -> httpx2.Response:
        """Send the file from the offset the session holds, finishing with `finalize`.

        A transient failure (a retryable status or a broken connection) is followed by a
        `query` of the session, and the rest is sent from the offset it reports, as the SDK's
        own chunk loop would resend a chunk. When the query fails too, the first failure is
        raised and the caller starts a new session.
        """
        attempts = max(1, self._retrier.settings.retry_attempts)
        offset = 0
        for attempt in range(1, attempts + 1):
            try:
                response = await http.post(
                    upload_url,
                    content=counted(
                        file_pieces(path, offset, size),
                        progress,
                        self._retrier.clock,
                        start=offset,
                        total=size,
                    ),
                    headers={
                        **headers,
                        "X-Goog-Upload-Command": "upload, finalize",
                        "X-Goog-Upload-Offset": str(offset),
                        "Content-Length": str(size - offset),
                    },
                    timeout=timeout,
                )
                await raise_for_status(response)
                return response
            except HTTP_FAILURES as exc:
                if not is_transient(exc) or attempt >= attempts:
                    raise
                failure = exc
            await self._retrier.clock.sleep(self._retrier.wait_after(attempt, failure))
            logger.info("resuming an upload after %s", type(failure).__name__)
            try:
                offset = await _upload_offset(http, upload_url, headers, timeout, size)
            except (*HTTP_FAILURES, ValueError):
                raise failure from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- delete --------------------------------------------------------------------------------

    async def delete(self, name: str) -> bool:
        """Delete file `name` with the SDK's request sent by this client; False when the SDK's
        builder is not reachable (the caller uses the SDK's public call). An error answer is
        raised as the SDK would raise it. The SDK's own call built and validated its response
        model for an empty answer: a third of the CPU of apply's collect went to the two
        deletes per job."""
        route = self._route("delete", f"files/{name.removeprefix('files/')}")
        if route is None:
            return False
        http, request = route
        response = await http.delete(request.url, headers=request.headers, timeout=request.timeout)
        await raise_for_status(response)
        return True

    # -- download ------------------------------------------------------------------------------

    async def download(
        self,
        name: str,
        dest: Path,
        follower: DownloadFollower | None,
        progress: Progress | None = None,
    ) -> tuple[str, int]:
        """Stream file `name` into `dest` (created or truncated); return (sha256 hex, bytes).

        The request is the SDK's own `files.download` request (`GET .../files/{id}:download
        ?alt=media`); the chunks are gathered, hashed and written in 1 MiB pieces and written
        back to disk while the download runs (`receive`). Memory stays bounded by one piece.
        A transient failure restarts from byte 0 with a truncated file and a fresh hash.
        """
        # The path files.download builds for a `files/<id>` name (protocol §2).
        path = f"files/{name.removeprefix('files/')}:download?alt=media"
        async for attempt in self._retrier.transfers():
            with attempt:
                route = self._route("get", path)
                if route is None:
                    if progress is not None:
                        progress(0, None)
                    measured = await self._download_via_sdk(name, dest)
                    if progress is not None:
                        progress(measured[1], measured[1])
                else:
                    measured = await _download_streamed(
                        *route, dest, follower, progress, self._retrier.clock
                    )
        return measured

    async def _download_via_sdk(self, name: str, dest: Path) -> tuple[str, int]:
        handle = await asyncio.to_thread(dest.open, "wb")
        try:
            writer = HashingWriter(handle)
            await self._client.aio.files.download(file=name, destination=writer)
        finally:
            await asyncio.to_thread(handle.close)
        return writer.sha256.hexdigest(), writer.size


async def _upload_offset(
    http: httpx2.AsyncClient,
    upload_url: str,
    headers: Mapping[str, str],
    timeout: float | None,
    size: int,
) -> int:
    """How many bytes the upload session holds (`X-Goog-Upload-Command: query`).

    Raises:
        ValueError: the session is not active or reports no usable offset.
    """
    response = await http.post(
        upload_url,
        headers={**headers, "X-Goog-Upload-Command": "query", "Content-Length": "0"},
        timeout=timeout,
    )
    await raise_for_status(response)
    status = response.headers.get("x-goog-upload-status")
    received = response.headers.get("x-goog-upload-size-received", "")
    if status != "active" or not received.isdigit() or int(received) > size:
        raise ValueError(f"upload session {status}, {received!r} bytes received")
    return int(received)


async def _download_streamed(
    http: httpx2.AsyncClient,
    request: SdkRequest,
    dest: Path,
    follower: DownloadFollower | None,
    progress: Progress | None,
    clock: Clock,
) -> tuple[str, int]:
    async with http.stream(
        "GET", request.url, headers=request.headers, timeout=request.timeout
    ) as response:
        await raise_for_status(response)
        chunks = counted(response.aiter_bytes(), progress, clock, total=_content_length(response))
        if follower is None:
            return await receive(chunks, dest)
        length = _content_length(response)
        # Empty the file before the follower opens it: a retried attempt's old bytes must
        # not be read as this attempt's.
        dest.write_bytes(b"")
        if length is not None and length <= SMALL_FILE_IO:
            follows = follower.begin(dest, length)  # a follower follows only large files
        else:
            follows = await asyncio.to_thread(follower.begin, dest, length)
        try:
            digest, size = await receive(chunks, dest, hashing=not follows)
            if follows:
                try:
                    digest = await asyncio.to_thread(follower.end, size)
                except Exception as exc:  # the file is whole: hash it here instead
                    logger.warning("the download follower failed (%s); hashing here", exc)
                    digest = await asyncio.to_thread(sha256_file, dest)
        except BaseException:
            await asyncio.to_thread(follower.abandon)
            raise
        return digest, size
