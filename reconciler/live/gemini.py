"""The Gemini batch adapter: the ONLY module that imports google.genai, and the error boundary.

Every call goes through the real SDK's async client (`client.aio`), so the emulator and Google
see the same requests (DESIGN §8). The two byte transfers are the exception, in part: the SDK
still builds their requests (URL, API version, headers) and its connection pool sends them, but
the bodies are streamed here -- one `upload, finalize` request streamed from disk instead of
8 MiB chunks read into memory one at a time, and a download gathered, hashed and written in
1 MiB pieces while the disk writes back. At 1 GiB the SDK's own download took 1.5x a plain
streamed GET (benchmarks/RESULTS.md); see `upload_file` and `download_file`. Without the SDK
internals this needs (`_SdkTransport`), the public SDK calls are used instead.

Everything leaving this module is the tool's own type:
`Live`, `LiveJob`, `LiveFile`, `InlineResult` (snapshot.py), and every failure is a
`ServiceError` -- no `google.genai.errors`, httpx or pydantic exception escapes (STYLE §2, the
httpx `map_exceptions` pattern). Messages never contain the API key.

Retries (gemini-batch-protocol.md §4: the SDK retries nothing by default):

- JSON calls: the client carries `HttpRetryOptions` (408/429/500/502/503/504, connect errors
  and timeouts), configured from `AdapterSettings`.
- Uploads and downloads: those options do not apply to the upload request or the streamed
  download (§2.1), so a tenacity loop here restarts the whole transfer on transient failures;
  an upload first tries to resume its session from the offset the service reports.
- `create_job` is NOT idempotent at the service (DESIGN §7): it is resent only when the
  service's answer proves nothing was created (429, 503, 408, or no connection made). Any other
  failure after the request may have been sent raises `TransientServiceError(ambiguous=True)`,
  and the caller adopts the job by its identity tag instead of creating it again.

Safe to call concurrently from many asyncio tasks: the adapter holds no per-call state, and the
SDK's httpx client is a connection pool. Bounding concurrency is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import random
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Literal, NoReturn, Protocol

import httpx2
import pydantic
import tenacity
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from google.genai._api_client import BaseApiClient
from typing_extensions import Buffer

from reconciler.clock import Clock
from reconciler.errors import (
    ConfigError,
    PermanentServiceError,
    ServiceError,
    TransientServiceError,
)
from reconciler.live.endpoint import Endpoint, EndpointKind, endpoint_kind, resolve_endpoint
from reconciler.live.snapshot import (
    InlineError,
    InlineResult,
    JsonObject,
    Live,
    LiveFile,
    LiveJob,
)
from reconciler.live.wire import (
    job_state_from_service,
    split_embed_requests,
    split_generate_request,
    strip_prefix,
)

if TYPE_CHECKING:
    from reconciler.config import Project

logger = logging.getLogger(__name__)

# The SDK warns on every create_embeddings call that the method is experimental; it is the only
# way to reach asyncBatchEmbedContent, and the warning would reach users' terminals.
warnings.filterwarnings("ignore", message=r"batches\.create_embeddings\(\) is experimental")

Task = Literal["generate", "embed"]

RETRYABLE_STATUS: Final = (408, 429, 500, 502, 503, 504)
"""The SDK's own default set (protocol §4): timeouts, quota, and server-side failures."""

CREATE_RESENDABLE_STATUS: Final = frozenset({408, 429, 503})
"""Answers that prove the create was not carried out: the request timed out before the server
read it (408), was refused for quota (429), or the service was unavailable (503). A 500/502/504
may come after the job was made, so those are ambiguous."""

MAX_PAGE_SIZE: Final = 100
"""Largest page the Files API documents for files.list (pageSize ≤ 100); batches.list has no
documented maximum, so the same value is used. Fewer pages = fewer calls per snapshot."""

_REDACTED = "<redacted>"

_TRANSFER_PIECE: Final = 1 << 20
"""Bytes per read, hash and write in uploads and downloads."""
_WRITEBACK_EVERY: Final = 64 << 20
_MAX_PIECES: Final = 256
"""Chunks per `writev`, well under IOV_MAX (1024) however small the network's chunks are."""
"""A download starts writing back to disk after every this many bytes (see `_receive`)."""


@dataclass(frozen=True, slots=True)
class AdapterSettings:
    """How hard the adapter retries and how long it waits; tests shrink the delays."""

    retry_attempts: int = 5
    """Attempts per call, the first included (the SDK's default)."""
    retry_initial_delay: float = 1.0
    """Seconds before the first retry; doubles each time, with jitter."""
    retry_max_delay: float = 30.0
    retry_jitter: float = 1.0
    """Up to this many random seconds added to each delay."""
    request_timeout: float = 120.0
    """Seconds per HTTP request (the SDK sends none by default, so a hung socket waits forever)."""
    transfer_attempts: int = 3
    """Whole-transfer attempts for uploads and downloads (each already retries its start)."""
    page_size: int = MAX_PAGE_SIZE


# --- the error boundary -----------------------------------------------------------------------


def _status_of(exc: BaseException) -> int | None:
    return exc.code if isinstance(exc, genai_errors.APIError) else None


def _is_transient(exc: BaseException) -> bool:
    """What the SDK's own retry predicate accepts, plus resets (a dropped connection)."""
    if isinstance(exc, genai_errors.APIError):
        return exc.code in RETRYABLE_STATUS
    return isinstance(exc, httpx2.TransportError)


def _create_resendable(exc: BaseException) -> bool:
    """True only when no job can have been created by the failed create request."""
    if isinstance(exc, genai_errors.APIError):
        return exc.code in CREATE_RESENDABLE_STATUS
    # No connection was made, so no request was sent.
    return isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)


class _Boundary:
    """Turns SDK, httpx and validation failures into ServiceErrors with the key scrubbed."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def error(
        self,
        exc: BaseException,
        call: str,
        *,
        ambiguous: bool = False,
        resource: str | None = None,
    ) -> ServiceError:
        """The ServiceError for `exc` raised by `call` (a name like "batches.create")."""
        if isinstance(exc, ServiceError):
            return exc
        if isinstance(exc, genai_errors.APIError):
            detail = exc.message or exc.status or ""
            status = f" {exc.status}" if exc.status else ""
            message = self.redact(f"HTTP {exc.code}{status}: {detail}".rstrip(": "))
            if exc.code in RETRYABLE_STATUS:
                return TransientServiceError(
                    message, call=call, resource=resource, status_code=exc.code, ambiguous=ambiguous
                )
            return PermanentServiceError(
                message, call=call, resource=resource, status_code=exc.code
            )
        if isinstance(exc, httpx2.TimeoutException):
            return TransientServiceError(
                f"timed out ({type(exc).__name__})",
                call=call,
                resource=resource,
                ambiguous=ambiguous,
            )
        if isinstance(exc, httpx2.TransportError):
            return TransientServiceError(
                f"connection failed ({type(exc).__name__})",
                call=call,
                resource=resource,
                ambiguous=ambiguous,
            )
        if isinstance(exc, pydantic.ValidationError | json.JSONDecodeError | KeyError | ValueError):
            # The SDK raises ValueError/KeyError for answers it cannot use (an upload that never
            # finalises, a missing upload URL, an unparsable body).
            message = self.redact(f"malformed answer: {type(exc).__name__}: {exc}")
            if ambiguous:
                return TransientServiceError(message, call=call, resource=resource, ambiguous=True)
            return PermanentServiceError(message, call=call, resource=resource)
        if isinstance(exc, OSError):
            return PermanentServiceError(
                self.redact(f"local I/O failed: {exc}"), call=call, resource=resource
            )
        return PermanentServiceError(
            self.redact(f"unexpected failure: {type(exc).__name__}: {exc}"),
            call=call,
            resource=resource,
        )

    @contextlib.contextmanager
    def mapping(self, call: str) -> Iterator[None]:
        try:
            yield
        except ServiceError:
            raise
        except (
            genai_errors.APIError,
            httpx2.HTTPError,
            pydantic.ValidationError,
            ValueError,
            KeyError,
            OSError,
        ) as exc:
            raise self.error(exc, call) from exc


# --- SDK objects -> the tool's own values -----------------------------------------------------


def _malformed(call: str, what: str) -> NoReturn:
    raise PermanentServiceError(f"malformed answer: {what}", call=call)


def _live_job(job: types.BatchJob, call: str) -> LiveJob:
    if not job.name:
        _malformed(call, "batch job without a name")
    dest = job.dest
    inline = bool(dest and (dest.inlined_responses or dest.inlined_embed_content_responses))
    return LiveJob(
        name=job.name,
        display_name=job.display_name,
        state=job_state_from_service(strip_prefix(job.state.name) if job.state else None),
        model=job.model,
        create_time=job.create_time,
        update_time=job.update_time,
        end_time=job.end_time,
        output_file=dest.file_name if dest else None,
        has_inline_output=inline,
    )


def _live_file(file: types.File, call: str) -> LiveFile:
    if not file.name:
        _malformed(call, "file without a name")
    return LiveFile(
        name=file.name,
        display_name=file.display_name,
        size_bytes=file.size_bytes or 0,
        sha256_b64=file.sha256_hash,
        state=strip_prefix(file.state.name if file.state else None) or "STATE_UNSPECIFIED",
        expiration_time=file.expiration_time,
        source=strip_prefix(file.source.name) if file.source else None,
        uri=file.uri,
        create_time=file.create_time,
        download_uri=file.download_uri,
    )


def _json_object(model: pydantic.BaseModel | None) -> JsonObject | None:
    """A response model back in its REST shape (camelCase), dropping unset fields."""
    if model is None:
        return None
    dumped: JsonObject = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _inline_error(error: types.JobError | None) -> InlineError | None:
    return InlineError(code=error.code, message=error.message) if error else None


def _metadata_key(metadata: Mapping[str, object] | None) -> str | None:
    if not metadata:
        return None
    key = metadata.get("key")
    return None if key is None else str(key)


# --- the adapter ------------------------------------------------------------------------------


class _HashingWriter(io.RawIOBase):
    """The download destination the SDK streams into: hashes and counts while writing.

    Writes are synchronous: the SDK hands over 1 MiB chunks, which land in the page cache in
    well under a millisecond, cheaper than a thread hop per chunk.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk: Buffer) -> int:
        data = bytes(chunk)
        self.sha256.update(data)
        self.size += len(data)
        return self._handle.write(data)


class _SdkTransport:
    """The SDK's own request builder and httpx client, used for the two byte transfers.

    Reached through the SDK's private `_api_client` (google-genai 3.x): `_build_request` gives
    exactly the URL (base_url, `/v1` or `/v1beta` per the client's api_version) and headers
    (`x-goog-api-key`, user agent, server timeout) the SDK would send itself, and the requests go
    over the SDK's own connection pool. `of()` answers None when any of that is missing (another
    SDK version, Vertex mode, an aiohttp or google-auth transport), and the adapter then uses the
    SDK's public methods instead.
    """

    def __init__(self, api: BaseApiClient, http: httpx2.AsyncClient) -> None:
        self._api = api
        self.http = http

    @classmethod
    def of(cls, client: genai.Client) -> _SdkTransport | None:
        api = getattr(client, "_api_client", None)
        if not isinstance(api, BaseApiClient) or api.vertexai:
            return None
        if not all(hasattr(api, attr) for attr in ("_build_request", "_httpx_url", "_use_aiohttp")):
            return None
        http = getattr(api, "_async_httpx_client", None)
        if not isinstance(http, httpx2.AsyncClient) or api._use_aiohttp():
            return None
        _widen_http11_reads()
        return cls(api, http)

    def request(self, method: str, path: str) -> tuple[str, dict[str, str], float | None]:
        """(url, headers, timeout in seconds) of the SDK's request for `path`, a path below
        the API version like `files/x:download?alt=media`."""
        built = self._api._build_request(method, path, {}, None)
        return self._api._httpx_url(built.url, is_async=True), dict(built.headers), built.timeout


_HTTP11_READ_BYTES: Final = 1 << 20


def _widen_http11_reads() -> None:
    """Let the async HTTP/1.1 connections read up to 1 MiB per socket read instead of 64 KiB.

    httpcore's `READ_NUM_BYTES` caps each read; a download then costs one pass through the
    connection, h11 and the stream iterator per 64 KiB, which made the client, not the
    network, the limit: 1 GiB from the emulator took 3.9-4.6 s against a plain blocking GET's
    2.7-2.9 s, and 2.8 s with 1 MiB reads (benchmarks/RESULTS.md). A read returns what has
    arrived, so JSON calls are unaffected. Left alone if the attribute is not there.
    """
    import httpcore2._async.http11 as http11  # the SDK's transport (httpx2's core)

    connection = getattr(http11, "AsyncHTTP11Connection", None)
    current = getattr(connection, "READ_NUM_BYTES", None)
    if isinstance(current, int) and current < _HTTP11_READ_BYTES:
        connection.READ_NUM_BYTES = _HTTP11_READ_BYTES  # type: ignore[union-attr]


async def _file_pieces(path: Path, start: int, size: int) -> AsyncIterator[bytes]:
    """Bytes `start` to `size` of `path` in `_TRANSFER_PIECE` pieces (memory: one piece).

    Raises:
        OSError: the file is shorter than `size` (it changed while being sent).
    """
    handle = await asyncio.to_thread(path.open, "rb", buffering=0)
    try:
        handle.seek(start)
        left = size - start
        while left > 0:
            piece = handle.read(min(_TRANSFER_PIECE, left))
            if not piece:
                raise OSError(f"{path} shrank while it was being uploaded")
            left -= len(piece)
            yield piece
    finally:
        handle.close()


class DownloadFollower(Protocol):
    """Reads a download's file while it is written, in another process (apply's results
    summary): when it follows, it hashes the bytes, so the receiving loop only receives."""

    def begin(self, dest: Path, length: int | None) -> bool:
        """A download attempt into `dest` of `length` bytes starts; True if it will follow it."""
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


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _content_length(response: httpx2.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_pieces(fd: int, pieces: list[bytes]) -> None:
    """Write `pieces` in order with one `writev` (no joined copy); a short write finishes
    piece by piece."""
    if not pieces:
        return
    written = os.writev(fd, pieces)
    for piece in pieces:
        if written >= len(piece):
            written -= len(piece)
            continue
        _write_all(fd, piece[written:])
        written = 0


async def _receive(
    chunks: AsyncIterator[bytes], dest: Path, *, hashing: bool = True
) -> tuple[str, int]:
    """Write `chunks` to `dest` (created or truncated), hashing them; return (sha256 hex, bytes).
    Without `hashing` (a follower hashes the file) the digest returned is "".

    Chunks are gathered up to `_TRANSFER_PIECE` and written with one `writev` (no joined copy):
    per-chunk write calls cost more than the bytes they move. Every `_WRITEBACK_EVERY` bytes
    a worker thread starts `fdatasync` on what has been written so far, so the disk writes back
    while the network delivers, and the caller's final fsync (durability, DESIGN §7) finds
    little left to write.
    """
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    size = unsynced = 0
    pending: list[bytes] = []
    pending_size = 0
    syncing: asyncio.Future[None] | None = None
    fd = await asyncio.to_thread(os.open, dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        async for chunk in chunks:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size < _TRANSFER_PIECE and len(pending) < _MAX_PIECES:
                continue
            if hashing:
                for part in pending:
                    digest.update(part)
            _write_pieces(fd, pending)
            size += pending_size
            unsynced += pending_size
            pending.clear()
            pending_size = 0
            if unsynced >= _WRITEBACK_EVERY and (syncing is None or syncing.done()):
                if syncing is not None:
                    syncing.result()  # a failed writeback is a failed download
                syncing = loop.run_in_executor(None, os.fdatasync, fd)
                unsynced = 0
        if hashing:
            for part in pending:
                digest.update(part)
        _write_pieces(fd, pending)
        size += pending_size
    finally:
        # The fd must outlive the worker's fdatasync, whatever happened here.
        if syncing is not None:
            await asyncio.wait({syncing})
        os.close(fd)
    if syncing is not None:
        syncing.result()
    return (digest.hexdigest() if hashing else ""), size


class GeminiAdapter:
    """Files and Batches calls over a `genai.Client`; results are plain values (snapshot.py).

    Every method raises only `ServiceError`s: `TransientServiceError` (worth retrying later) or
    `PermanentServiceError` (the same call will fail again), each naming the SDK call.
    """

    def __init__(
        self,
        client: genai.Client,
        *,
        clock: Clock,
        settings: AdapterSettings | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        """Wrap `client` (build it with `build_client` so it carries the retry options).

        Args:
            secrets: strings never to show in an error (the API key).
        """
        self._client = client
        self._aio = client.aio
        self._clock = clock
        self._settings = settings or AdapterSettings()
        self._boundary = _Boundary(secrets)

    # -- reading -------------------------------------------------------------------------------

    async def snapshot(self, *, include_files: bool) -> Live:
        """Every batch job (one paginated `batches.list` walk, not a `get` per job) and, when
        asked, every file (`files.list`). `observed_at` is taken before the first call, so
        anything that changes during the walk is newer than the snapshot says."""
        observed_at = self._clock.now()
        jobs_task = asyncio.ensure_future(self._list_jobs())
        try:
            files = await self._list_files() if include_files else None
            jobs = await jobs_task
        finally:
            if not jobs_task.done():
                jobs_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ServiceError):
                    await jobs_task
        return Live(
            observed_at=observed_at,
            jobs=dict(sorted(jobs.items())),
            files=dict(sorted((files or {}).items())),
            files_listed=files is not None,
        )

    async def _list_jobs(self) -> dict[str, LiveJob]:
        call = "batches.list"
        jobs: dict[str, LiveJob] = {}
        with self._boundary.mapping(call):
            pager = await self._aio.batches.list(
                config=types.ListBatchJobsConfig(page_size=self._settings.page_size)
            )
            async for job in pager:
                live = _live_job(job, call)
                jobs[live.name] = live
        return jobs

    async def _list_files(self) -> dict[str, LiveFile]:
        call = "files.list"
        files: dict[str, LiveFile] = {}
        with self._boundary.mapping(call):
            pager = await self._aio.files.list(
                config=types.ListFilesConfig(page_size=self._settings.page_size)
            )
            async for file in pager:
                live = _live_file(file, call)
                files[live.name] = live
        return files

    async def get_job(self, name: str) -> LiveJob | None:
        """The job now, or None when the service does not know it (404)."""
        call = "batches.get"
        try:
            with self._boundary.mapping(call):
                job = await self._aio.batches.get(name=name)
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _live_job(job, call)

    async def get_file(self, name: str) -> LiveFile | None:
        """The file now, or None when the service does not have it (404, or the 403 it sometimes
        sends for files that expired -- protocol §4)."""
        call = "files.get"
        try:
            with self._boundary.mapping(call):
                file = await self._aio.files.get(name=name)
        except PermanentServiceError as exc:
            if exc.status_code in (403, 404):
                return None
            raise
        return _live_file(file, call)

    async def inline_results(self, job_name: str) -> list[InlineResult]:
        """The inline responses of a finished job, in the service's order.

        Keys come from each response's `metadata.key`; items without one (inline embeddings,
        or a service that drops metadata -- python-genai #1909) have `key=None` and only their
        `index`. Empty when the job has no inline output (yet).
        """
        call = "batches.get"
        with self._boundary.mapping(call):
            job = await self._aio.batches.get(name=job_name)
            dest = job.dest
            results: list[InlineResult] = []
            if dest is None:
                return results
            for index, item in enumerate(dest.inlined_responses or ()):
                results.append(
                    InlineResult(
                        index=index,
                        key=_metadata_key(item.metadata),
                        response=_json_object(item.response),
                        error=_inline_error(item.error),
                    )
                )
            for index, embed in enumerate(dest.inlined_embed_content_responses or ()):
                results.append(
                    InlineResult(
                        index=index,
                        key=_metadata_key(embed.metadata),
                        response=_json_object(embed.response),
                        error=_inline_error(embed.error),
                    )
                )
        return results

    # -- files ---------------------------------------------------------------------------------

    async def upload_file(self, path: Path, *, display_name: str, mime_type: str) -> LiveFile:
        """Upload `path` with the resumable protocol: the start through the SDK, then the whole
        file streamed from disk in one `upload, finalize` request to the upload URL.

        The SDK would send the file as 8 MiB requests, each read into memory first, after the
        start; one streamed request is equally valid (the protocol bounds only non-final
        chunks, protocol §2.1) and measured 1.6-1.8 s -> ~1.1 s for 256 MiB (benchmarks/RESULTS.md).
        The start goes through `files._create`, as the SDK's own upload does, so the client's
        retry options and headers apply to it; the upload URL it returns is used verbatim, with
        the start's upload headers and no API key, as the SDK sends its chunks.

        A transient failure restarts the upload in a new session: resuming needs the server's
        offset, which the protocol exposes only through another query. A lost final answer can
        leave an orphan file; it expires after 48 h (protocol §5).
        """
        call = "files.upload"
        transport = _SdkTransport.of(self._client)
        with self._boundary.mapping(call):
            async for attempt in self._transfer_retrying():
                with attempt:
                    if transport is None:
                        file = await self._aio.files.upload(
                            file=os.fspath(path),
                            config=types.UploadFileConfig(
                                display_name=display_name, mime_type=mime_type
                            ),
                        )
                    else:
                        file = await self._upload_streamed(
                            transport, path, display_name=display_name, mime_type=mime_type
                        )
        return _live_file(file, call)

    async def _upload_streamed(
        self, transport: _SdkTransport, path: Path, *, display_name: str, mime_type: str
    ) -> types.File:
        size = (await asyncio.to_thread(path.stat)).st_size
        headers = {
            "Content-Type": "application/json",
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime_type,
            "X-Goog-Upload-File-Name": path.name,
        }
        started = await self._aio.files._create(
            file=types.File(display_name=display_name, mime_type=mime_type, size_bytes=size),
            config=types.CreateFileConfig(
                http_options=types.HttpOptions(headers=headers), should_return_http_response=True
            ),
        )
        answer = started.sdk_http_response
        found = {k.lower(): v for k, v in ((answer.headers or {}) if answer else {}).items()}
        upload_url = found.get("x-goog-upload-url")
        if not upload_url:
            raise KeyError("the upload start answered without an X-Goog-Upload-URL")
        _, _, timeout = transport.request("post", "upload/{api_version}/files")
        response = await self._send_upload(transport, upload_url, path, size, headers, timeout)
        status = response.headers.get("x-goog-upload-status")
        if status != "final":
            raise ValueError(f"the upload was not finalised (X-Goog-Upload-Status: {status})")
        body = response.json()
        return types.File._from_response(response=body["file"], kwargs={})

    async def _send_upload(
        self,
        transport: _SdkTransport,
        upload_url: str,
        path: Path,
        size: int,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> httpx2.Response:
        """Send the file from the offset the session holds, finishing with `finalize`.

        A transient failure (a retryable status or a broken connection) is followed by a
        `query` of the session, and the rest is sent from the offset it reports, as the SDK's
        own chunk loop would resend a chunk. When the query fails too, the first failure is
        raised and the caller starts a new session.
        """
        s = self._settings
        offset = 0
        for attempt in range(max(1, s.retry_attempts)):
            try:
                response = await transport.http.post(
                    upload_url,
                    content=_file_pieces(path, offset, size),
                    headers={
                        **headers,
                        "X-Goog-Upload-Command": "upload, finalize",
                        "X-Goog-Upload-Offset": str(offset),
                        "Content-Length": str(size - offset),
                    },
                    timeout=timeout,
                )
                await genai_errors.APIError.raise_for_async_response(response)
                return response
            except (genai_errors.APIError, httpx2.HTTPError) as exc:
                if not _is_transient(exc) or attempt + 1 >= s.retry_attempts:
                    raise
                failure = exc
            delay = min(s.retry_max_delay, s.retry_initial_delay * 2**attempt)
            await self._clock.sleep(delay + random.uniform(0, s.retry_jitter))
            logger.info("resuming an upload after %s", type(failure).__name__)
            try:
                offset = await self._upload_offset(transport, upload_url, headers, timeout, size)
            except (genai_errors.APIError, httpx2.HTTPError, ValueError):
                raise failure from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    async def _upload_offset(
        transport: _SdkTransport,
        upload_url: str,
        headers: Mapping[str, str],
        timeout: float | None,
        size: int,
    ) -> int:
        """How many bytes the upload session holds (`X-Goog-Upload-Command: query`).

        Raises:
            ValueError: the session is not active or reports no usable offset.
        """
        response = await transport.http.post(
            upload_url,
            headers={**headers, "X-Goog-Upload-Command": "query", "Content-Length": "0"},
            timeout=timeout,
        )
        await genai_errors.APIError.raise_for_async_response(response)
        status = response.headers.get("x-goog-upload-status")
        received = response.headers.get("x-goog-upload-size-received", "")
        if status != "active" or not received.isdigit() or int(received) > size:
            raise ValueError(f"upload session {status}, {received!r} bytes received")
        return int(received)

    async def download_file(
        self, name: str, dest: Path, *, follower: DownloadFollower | None = None
    ) -> tuple[str, int]:
        """Stream file `name` into `dest` (created or truncated); return (sha256 hex, bytes).

        The request is the SDK's own `files.download` request (`GET .../files/{id}:download
        ?alt=media`, built by the SDK, sent on its connection pool), but the body is read here:
        the SDK's loop re-chunks the stream into 1 MiB pieces and hands each to a writer one
        await at a time, which made the download 1.5x a plain streamed GET (RESULTS.md). Here
        the chunks are gathered, hashed and written in 1 MiB pieces, and written back to disk
        while the download runs (`_receive`). Memory stays bounded by one piece.

        A transient failure restarts from byte 0 with a truncated file and a fresh hash.
        Callers wanting atomicity pass a temporary path and rename it after checking the digest.
        """
        call = "files.download"
        transport = _SdkTransport.of(self._client)
        with self._boundary.mapping(call):
            async for attempt in self._transfer_retrying():
                with attempt:
                    if transport is None:
                        measured = await self._download_via_sdk(name, dest)
                    else:
                        measured = await self._download_streamed(transport, name, dest, follower)
        return measured

    @staticmethod
    async def _download_streamed(
        transport: _SdkTransport, name: str, dest: Path, follower: DownloadFollower | None
    ) -> tuple[str, int]:
        # The path files.download builds for a `files/<id>` name (protocol §2).
        file_id = name.removeprefix("files/")
        url, headers, timeout = transport.request("get", f"files/{file_id}:download?alt=media")
        async with transport.http.stream("GET", url, headers=headers, timeout=timeout) as response:
            await genai_errors.APIError.raise_for_async_response(response)
            if follower is None:
                return await _receive(response.aiter_bytes(), dest)
            # Empty the file before the follower opens it: a retried attempt's old bytes must
            # not be read as this attempt's.
            await asyncio.to_thread(dest.write_bytes, b"")
            follows = await asyncio.to_thread(follower.begin, dest, _content_length(response))
            try:
                digest, size = await _receive(response.aiter_bytes(), dest, hashing=not follows)
                if follows:
                    try:
                        digest = await asyncio.to_thread(follower.end, size)
                    except Exception as exc:  # the file is whole: hash it here instead
                        logger.warning("the download follower failed (%s); hashing here", exc)
                        digest = await asyncio.to_thread(_sha256_of, dest)
            except BaseException:
                await asyncio.to_thread(follower.abandon)
                raise
            return digest, size

    async def _download_via_sdk(self, name: str, dest: Path) -> tuple[str, int]:
        handle = await asyncio.to_thread(dest.open, "wb")
        try:
            writer = _HashingWriter(handle)
            await self._aio.files.download(file=name, destination=writer)
        finally:
            await asyncio.to_thread(handle.close)
        return writer.sha256.hexdigest(), writer.size

    async def delete_file(self, name: str) -> None:
        """Delete a file; one already gone (404, or the 403 the service sometimes sends for
        missing files -- protocol §4) counts as deleted."""
        call = "files.delete"
        try:
            with self._boundary.mapping(call):
                await self._aio.files.delete(name=name)
        except PermanentServiceError as exc:
            if exc.status_code not in (403, 404):
                raise

    # -- jobs ----------------------------------------------------------------------------------

    async def create_job(
        self,
        *,
        model: str,
        task: Task,
        display_name: str,
        file_name: str | None = None,
        inline_requests: Sequence[Mapping[str, object]] | None = None,
        batch_fields: Mapping[str, object] | None = None,
    ) -> LiveJob:
        """Create one batch job from an uploaded file or inline requests.

        Inline requests have the shape of JSONL input lines: `{"key": str, "request": {...}}`
        with `request` a REST GenerateContentRequest (generate) or EmbedContentRequest (embed),
        either spelling (camelCase or snake_case). Generate keys travel as
        `metadata.key` and come back on each inline response; inline embeddings must share
        their options and are matched by position (the SDK's EmbedContentBatch has one config and
        no metadata). `batch_fields` are further fields of the REST batch resource, camelCase
        (e.g. `{"priority": 5}`), sent as given.

        Raises:
            PermanentServiceError: bad arguments (before any call), or a 4xx answer.
            TransientServiceError: the service was busy or unreachable; `ambiguous` is True when
                the job may exist anyway -- look it up by its tag before creating it again.
        """
        call = "batches.create" if task == "generate" else "batches.create_embeddings"
        if (file_name is None) == (inline_requests is None):
            raise PermanentServiceError(
                "give exactly one of file_name and inline_requests", call=call
            )
        try:
            if task == "generate":
                source: types.BatchJobSource = self._generate_source(file_name, inline_requests)
            else:
                embed_source = self._embed_source(file_name, inline_requests)
        except (ValueError, pydantic.ValidationError) as exc:
            raise PermanentServiceError(
                self._boundary.redact(f"invalid inline request: {exc}"), call=call
            ) from exc
        # Per-call options replace the client's retry policy for this one request: the SDK would
        # otherwise resend after a read timeout, which may duplicate the job.
        # Batch fields the SDK's config has no slot for (e.g. `priority`) ride in `extra_body`,
        # which the SDK merges into the request's `batch` object.
        extra = {"batch": dict(batch_fields)} if batch_fields else None
        once = types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1), extra_body=extra)
        retrying = self._retrying(_create_resendable, self._settings.retry_attempts)
        try:
            async for attempt in retrying:
                with attempt:
                    if task == "generate":
                        job = await self._aio.batches.create(
                            model=model,
                            src=source,
                            config=types.CreateBatchJobConfig(
                                display_name=display_name, http_options=once
                            ),
                        )
                    else:
                        job = await self._aio.batches.create_embeddings(
                            model=model,
                            src=embed_source,
                            config=types.CreateEmbeddingsBatchJobConfig(
                                display_name=display_name, http_options=once
                            ),
                        )
        except (
            genai_errors.APIError,
            httpx2.HTTPError,
            pydantic.ValidationError,
            ValueError,
            KeyError,
        ) as exc:
            # A refused request (4xx other than 408/429) or one that never left is not
            # ambiguous; everything else may have created the job.
            status = _status_of(exc)
            refused = (
                status is not None
                and 400 <= status < 500
                and status not in CREATE_RESENDABLE_STATUS
            )
            ambiguous = not refused and not _create_resendable(exc)
            raise self._boundary.error(exc, call, ambiguous=ambiguous) from exc
        return _live_job(job, call)

    @staticmethod
    def _generate_source(
        file_name: str | None, inline_requests: Sequence[Mapping[str, object]] | None
    ) -> types.BatchJobSource:
        if file_name is not None:
            return types.BatchJobSource(file_name=file_name)
        assert inline_requests is not None
        inlined: list[types.InlinedRequest] = []
        for index, line in enumerate(inline_requests):
            request = line.get("request")
            if not isinstance(request, Mapping):
                raise ValueError(f"inline request {index} has no `request` object")
            parts = split_generate_request(request)
            key = line.get("key")
            inlined.append(
                types.InlinedRequest.model_validate(
                    {
                        "model": parts.model,
                        "contents": parts.contents,
                        "config": parts.config or None,
                        "metadata": {"key": str(key)} if key is not None else None,
                    }
                )
            )
        return types.BatchJobSource(inlined_requests=inlined)

    @staticmethod
    def _embed_source(
        file_name: str | None, inline_requests: Sequence[Mapping[str, object]] | None
    ) -> types.EmbeddingsBatchJobSource:
        if file_name is not None:
            return types.EmbeddingsBatchJobSource(file_name=file_name)
        assert inline_requests is not None
        requests: list[Mapping[str, object]] = []
        for index, line in enumerate(inline_requests):
            request = line.get("request")
            if not isinstance(request, Mapping):
                raise ValueError(f"inline request {index} has no `request` object")
            requests.append(request)
        parts = split_embed_requests(requests)
        return types.EmbeddingsBatchJobSource(
            inlined_requests=types.EmbedContentBatch.model_validate(
                {"contents": parts.contents, "config": parts.config or None}
            )
        )

    async def cancel_job(self, name: str) -> None:
        """Ask the service to cancel a job. Idempotent: cancelling a job that already ended or
        no longer exists is not an error (what the service answers then is undocumented --
        protocol §4 -- so a 4xx is checked against the job's state)."""
        call = "batches.cancel"
        try:
            with self._boundary.mapping(call):
                await self._aio.batches.cancel(name=name)
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return
            job = await self.get_job(name)
            if job is None or job.state.is_terminal:
                return
            raise

    async def delete_job(self, name: str) -> None:
        """Delete a job resource; one already gone (404) counts as deleted."""
        call = "batches.delete"
        try:
            with self._boundary.mapping(call):
                await self._aio.batches.delete(name=name)
        except PermanentServiceError as exc:
            if exc.status_code != 404:
                raise

    async def aclose(self) -> None:
        """Close the SDK's connection pools."""
        with contextlib.suppress(Exception):
            await self._aio.aclose()
        with contextlib.suppress(Exception):
            self._client.close()

    # -- retry plumbing ------------------------------------------------------------------------

    def _retrying(
        self,
        predicate: Callable[[BaseException], bool],
        attempts: int,
        stop: Callable[[tenacity.RetryCallState], bool] | None = None,
    ) -> tenacity.AsyncRetrying:
        s = self._settings
        return tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(predicate),
            stop=stop or tenacity.stop_after_attempt(max(1, attempts)),
            wait=tenacity.wait_exponential_jitter(
                initial=s.retry_initial_delay, max=s.retry_max_delay, jitter=s.retry_jitter
            ),
            sleep=self._clock.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )

    def _transfer_retrying(self) -> tenacity.AsyncRetrying:
        """Retries of a whole transfer: `transfer_attempts` broken transfers (a connection lost
        mid-body), and a refusal before the body (429, 503: the service's answer) as often as a
        JSON call's `retry_attempts` allow for each of those -- the budget the SDK's own retry
        options gave each transfer attempt before the adapter streamed the bodies itself."""
        s = self._settings
        broken = 0

        def spent(state: tenacity.RetryCallState) -> bool:
            nonlocal broken
            exc = state.outcome.exception() if state.outcome else None
            if not isinstance(exc, genai_errors.APIError):
                broken += 1
            total = max(1, s.transfer_attempts) * max(1, s.retry_attempts)
            return broken >= max(1, s.transfer_attempts) or state.attempt_number >= total

        return self._retrying(_is_transient, s.transfer_attempts, stop=spent)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome else None
        logger.info(
            "retrying after %s (attempt %d)",
            self._boundary.redact(type(exc).__name__ if exc else "?"),
            state.attempt_number,
        )


# --- construction -----------------------------------------------------------------------------


def build_client(endpoint: Endpoint, settings: AdapterSettings) -> genai.Client:
    """A Developer-API client for `endpoint` with our retry options and timeout."""
    retry = types.HttpRetryOptions(
        attempts=settings.retry_attempts,
        initial_delay=settings.retry_initial_delay,
        max_delay=settings.retry_max_delay,
        jitter=settings.retry_jitter,
        http_status_codes=list(RETRYABLE_STATUS),
    )
    options = types.HttpOptions(
        api_version=endpoint.api_version,
        # The SDK takes milliseconds and also sends them as X-Server-Timeout (protocol §1).
        timeout=int(settings.request_timeout * 1000),
        retry_options=retry,
    )
    if endpoint.base_url is not None:
        options.base_url = endpoint.base_url
    # vertexai=False pins Developer-API mode even if GOOGLE_GENAI_USE_VERTEXAI is set.
    return genai.Client(api_key=endpoint.api_key, vertexai=False, http_options=options)


@contextlib.asynccontextmanager
async def open_adapter(
    project: Project,
    *,
    clock: Clock,
    settings: AdapterSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[GeminiAdapter]:
    """The adapter for `project.config.endpoint`, open for the `async with` block.

    `emulator` starts the embedded emulator in-process for the block's duration, keeping its
    data under `<project root>/<emulator.data_dir>` so jobs outlive one command.

    Raises:
        ConfigError: the endpoint setting is invalid, or the Gemini API has no key.
    """
    config = project.config
    environ = os.environ if environ is None else environ
    settings = settings or AdapterSettings()
    with contextlib.ExitStack() as stack:
        emulator_url: str | None = None
        if endpoint_kind(config.endpoint) is EndpointKind.EMULATOR:
            emulator_url = _start_emulator(project, stack)
        endpoint = resolve_endpoint(
            config.endpoint,
            api_version=config.api_version,
            environ=environ,
            emulator_base_url=emulator_url,
        )
        logger.debug("batch service endpoint: %s", endpoint)
        adapter = GeminiAdapter(
            build_client(endpoint, settings),
            clock=clock,
            settings=settings,
            secrets=(endpoint.api_key,),
        )
        try:
            yield adapter
        finally:
            await adapter.aclose()


def _start_emulator(project: Project, stack: contextlib.ExitStack) -> str:
    # Imported here: only `--endpoint emulator` needs the server stack.
    from reconciler.emulator import running_emulator

    data_dir = project.path(project.config.emulator.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the emulator data directory {data_dir}: {exc}") from None
    emulator = stack.enter_context(
        running_emulator(data_dir, job_seconds=project.config.emulator.job_seconds)
    )
    return str(emulator.base_url)
