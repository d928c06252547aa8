"""HTTP routes of the emulator (Starlette): Files, Batches and the `/_emulator/` admin API.

Each handler authenticates, passes the call through fault injection, then works on the store in a
worker thread (SQLite and file I/O must not block the event loop). Routes exist under both `/v1`
(the SDK's default) and `/v1beta` (pitfall 1). Success is always HTTP 200 with a JSON body
(`{}` for delete/cancel), since the SDK treats any other 2xx as an error (pitfall 14).

The `/_emulator/` admin API is a test tool, not a service feature: it turns faults and settings
(authentication included) on and off. It needs the API key whenever one is set, and JSON writes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from reconciler.emulator import jobs, wire
from reconciler.emulator.faults import ConnectionRegistry, FaultInjector
from reconciler.emulator.settings import EmulatorSettings, SettingsHolder, coerce_changes
from reconciler.emulator.store import BatchRow, FileRow, PageToken, Store, UploadRow, new_id

VERSIONS = frozenset({"v1", "v1beta"})
CHUNK_GRANULARITY = 8 * 1024 * 1024
_MAX_PAGE_SIZE = 100
_METHODS = {"batchGenerateContent": "generate", "asyncBatchEmbedContent": "embed"}

Handler = Callable[[Request], Awaitable[Response]]


def _pick(mapping: Any, *names: str) -> Any:
    """First present field among spellings: the service's proto-JSON parser takes camelCase
    and snake_case alike, and the SDK itself sends snake_case in two places (pitfall 7)."""
    if not isinstance(mapping, dict):
        return None
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


class EmulatorState:
    """Everything the routes share: store, settings, faults, and the server's connections."""

    def __init__(
        self, store: Store, settings: SettingsHolder, connections: ConnectionRegistry
    ) -> None:
        self.store = store
        self.settings = settings
        self.faults = FaultInjector(settings)
        self.connections = connections
        self.clock: Callable[[], float] = time.time
        self.hashers: dict[str, tuple[int, Any]] = {}
        """upload_id → (bytes hashed, sha256 state): hashing as chunks arrive saves re-reading
        a 2 GB file at finalize; lost on restart, when finalize falls back to re-reading."""


class _Reject(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _base_url(request: Request) -> str:
    # The upload URL and file URIs point at the emulator itself, as the client reached it
    # (pitfall 2: the SDK uses the upload URL verbatim).
    return str(request.base_url).rstrip("/")


def _version(request: Request) -> str:
    version = str(request.path_params.get("version", "v1beta"))
    if version not in VERSIONS:
        raise _Reject(wire.error(404, f"Unknown API version {version!r}"))
    return version


def _page_args(request: Request, settings: EmulatorSettings) -> tuple[int, PageToken | None]:
    raw_size = request.query_params.get("pageSize") or request.query_params.get("page_size")
    try:
        size = int(raw_size) if raw_size else settings.page_size
    except ValueError as exc:
        raise _Reject(wire.error(400, f"Invalid pageSize {raw_size!r}")) from exc
    size = min(max(size, 1), _MAX_PAGE_SIZE) if size > 0 else settings.page_size
    token_text = request.query_params.get("pageToken") or request.query_params.get("page_token")
    try:
        token = PageToken.decode(token_text) if token_text else None
    except ValueError as exc:
        raise _Reject(wire.error(400, str(exc))) from exc
    return size, token


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Reject(wire.error(400, f"Invalid JSON payload received. {exc}")) from exc


class Routes:
    """Route handlers bound to one EmulatorState."""

    def __init__(self, state: EmulatorState) -> None:
        self.s = state

    # ---- call plumbing ---------------------------------------------------------------------

    async def _guard(self, request: Request, route: str, *, auth: bool = True) -> None:
        decision = self.s.faults.decide(route)
        if decision.latency > 0:
            await asyncio.sleep(decision.latency)
        if decision.drop:
            client = request.scope.get("client")
            peer = (str(client[0]), int(client[1])) if client else None
            if self.s.connections.close(peer):
                raise _Reject(Response(status_code=200))  # written to an aborted socket: lost
            raise _Reject(wire.error(500, "connection drop requested but the socket is unknown"))
        if decision.status is not None:
            messages = {
                429: "Resource has been exhausted (e.g. check quota).",
                500: "An internal error has occurred.",
                503: "The service is currently unavailable.",
            }
            raise _Reject(wire.error(decision.status, messages[decision.status]))
        if auth:
            key = request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
            expected = self.s.settings.get().api_key
            if not key.strip():
                raise _Reject(
                    wire.error(
                        403,
                        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                    )
                )
            if expected is not None and key.strip() != expected:
                raise _Reject(wire.error(400, "API key not valid. Please pass a valid API key."))

    @staticmethod
    def endpoint(handler: Handler) -> Handler:
        """Turn a `_Reject` raised anywhere in a handler into its response."""

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except _Reject as reject:
                return reject.response

        return run

    # ---- files: upload ---------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        # Chunks carry Content-Type: application/json but raw bytes, and no API key: route by
        # upload_id, which is the credential (pitfalls 3 and 4).
        upload_id = request.query_params.get("upload_id")
        if upload_id:
            await self._guard(request, "files.upload_chunk", auth=False)
            return await self._upload_chunk(request, upload_id)
        await self._guard(request, "files.upload_start")
        return await self._upload_start(request)

    async def _upload_start(self, request: Request) -> Response:
        version = _version(request)
        body = await _json_body(request)
        meta = _pick(body, "file") or {}
        settings = self.s.settings.get()
        size_text = request.headers.get("x-goog-upload-header-content-length") or _pick(
            meta, "sizeBytes", "size_bytes"
        )
        try:
            declared = int(size_text) if size_text not in (None, "") else None
        except (TypeError, ValueError):
            return wire.error(400, f"Invalid upload size {size_text!r}")
        if declared is not None and declared > settings.max_file_bytes:
            return wire.error(
                400, f"File size {declared} exceeds the limit of {settings.max_file_bytes} bytes."
            )
        name = _pick(meta, "name")
        file_id = str(name).removeprefix("files/") if name else new_id(12)
        if (
            len(file_id) > 40
            or not file_id.replace("-", "").isalnum()
            or file_id != file_id.lower()
        ):
            return wire.error(
                400, "File name must be lower-case alphanumerics or dashes, at most 40 characters."
            )
        mime = (
            request.headers.get("x-goog-upload-header-content-type")
            or _pick(meta, "mimeType", "mime_type")
            or "application/octet-stream"
        )
        now = self.s.clock()
        await run_in_threadpool(self.s.store.purge_expired_files, now)
        if await run_in_threadpool(self.s.store.file_exists, file_id):
            return wire.error(409, f"File files/{file_id} already exists.")
        used = await run_in_threadpool(self.s.store.used_bytes)
        if used + (declared or 0) > settings.storage_quota_bytes:
            return wire.error(
                429, f"Storage quota of {settings.storage_quota_bytes} bytes exceeded."
            )
        display = _pick(meta, "displayName", "display_name")
        upload = UploadRow(
            new_id(32),
            file_id,
            None if display is None else str(display),
            str(mime),
            declared,
            0,
            now,
        )
        await run_in_threadpool(self.s.store.start_upload, upload)
        url = f"{_base_url(request)}/upload/{version}/files?upload_id={upload.id}&upload_protocol=resumable"
        return Response(
            b"",
            headers={
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
            },
        )

    async def _upload_chunk(self, request: Request, upload_id: str) -> Response:
        store = self.s.store
        upload = await run_in_threadpool(store.get_upload, upload_id)
        # Every chunk reply carries X-Goog-Upload-Status, errors included ("cancelled"): without
        # it the SDK resends each chunk three times with 1+2+4 s sleeps (pitfall 5).
        fail = {"X-Goog-Upload-Status": "cancelled"}
        if upload is None:
            return wire.error(404, "Upload session not found or already finalized.", headers=fail)
        commands = {
            c.strip().lower()
            for c in request.headers.get("x-goog-upload-command", "upload").split(",")
        }
        if "query" in commands:
            return Response(
                b"",
                headers={
                    "X-Goog-Upload-Status": "active",
                    "X-Goog-Upload-Size-Received": str(upload.received),
                },
            )
        offset_text = request.headers.get("x-goog-upload-offset", str(upload.received))
        if offset_text != str(upload.received):
            return wire.error(
                400,
                f"Upload offset {offset_text} does not match {upload.received} bytes received.",
                headers=fail,
            )
        limit = self.s.settings.get().max_file_bytes
        if upload.declared_size is not None:
            limit = min(limit, upload.declared_size)
        received = upload.received
        path = store.upload_blob(upload.id)
        # Stream to disk: memory stays at one network read whatever the chunk or file size.
        hashed, sha = self.s.hashers.pop(upload.id, (0, hashlib.sha256()))
        if hashed != received:
            sha = None
        with path.open("r+b") as blob:
            blob.seek(received)
            blob.truncate()
            async for piece in request.stream():
                received += len(piece)
                if received > limit:
                    return wire.error(400, f"Upload exceeds {limit} bytes.", headers=fail)
                blob.write(piece)
                if sha is not None:
                    sha.update(piece)
        if sha is not None:
            self.s.hashers[upload.id] = (received, sha)
        await run_in_threadpool(store.set_upload_received, upload.id, received)
        if "finalize" not in commands:
            return Response(b"", headers={"X-Goog-Upload-Status": "active"})
        if upload.declared_size is not None and received != upload.declared_size:
            return wire.error(
                400,
                f"Upload finalized after {received} of {upload.declared_size} bytes.",
                headers=fail,
            )
        progress = self.s.hashers.pop(upload.id, None)
        digest = progress[1].digest() if progress is not None and progress[0] == received else None
        file = await run_in_threadpool(self._finalize, upload, received, digest)
        version = "v1beta" if "/v1beta/" in request.url.path else "v1"
        # The SDK reads json['file'] from the final reply (pitfall 6).
        return JSONResponse(
            {"file": wire.file_json(file, _base_url(request), version)},
            headers={"X-Goog-Upload-Status": "final"},
        )

    def _finalize(self, upload: UploadRow, size: int, digest: bytes | None) -> FileRow:
        if digest is None:
            sha = hashlib.sha256()
            with self.s.store.upload_blob(upload.id).open("rb") as blob:
                while block := blob.read(1024 * 1024):
                    sha.update(block)
            digest = sha.digest()
        now = self.s.clock()
        settings = self.s.settings.get()
        file = FileRow(
            upload.file_id,
            upload.display_name,
            upload.mime_type,
            size,
            base64.b64encode(digest).decode(),
            now,
            now + settings.file_ttl_seconds / settings.time_scale,
            "UPLOADED",
            now,
            False,
        )
        self.s.store.finalize_upload(upload, file)
        return file

    # ---- files: get / list / delete / download -----------------------------------------------

    async def _live_file(self, file_id: str) -> FileRow:
        await run_in_threadpool(self.s.store.purge_expired_files, self.s.clock())
        file = await run_in_threadpool(self.s.store.get_file, file_id)
        if file is None:
            raise _Reject(wire.error(404, f"File files/{file_id} not found."))
        return file

    async def file_item(self, request: Request) -> Response:
        version = _version(request)
        name = str(request.path_params["name"])
        file_id, _, verb = name.partition(":")
        if verb == "download" and request.method == "GET":
            await self._guard(request, "files.download")
            return await self._download(file_id)
        if verb:
            await self._guard(request, "files.unknown")
            return wire.error(404, f"Method {verb!r} not found.")
        if request.method == "DELETE":
            await self._guard(request, "files.delete")
            file = await self._live_file(file_id)
            if file.source == "GENERATED" and file.undeletable:
                # Quirk (python-genai #1759): result ids are 42 chars, DeleteFileRequest allows 40.
                return wire.error(
                    400,
                    "* DeleteFileRequest.name: File ID (name excluding 'files/') cannot be more than 40 characters.\n",
                )
            await run_in_threadpool(self.s.store.delete_file, file_id)
            return JSONResponse({})
        await self._guard(request, "files.get")
        file = await self._live_file(file_id)
        return JSONResponse(wire.file_json(file, _base_url(request), version))

    async def download_alias(self, request: Request) -> Response:
        # /download/v1beta/files/<id>:download?alt=media, the form of the real downloadUri.
        _version(request)
        await self._guard(request, "files.download")
        file_id, _, verb = str(request.path_params["name"]).partition(":")
        if verb != "download":
            return wire.error(404, f"Method {verb!r} not found.")
        return await self._download(file_id)

    async def _download(self, file_id: str) -> Response:
        file = await self._live_file(file_id)
        if file.available_time > self.s.clock():
            # Quirk: the job says SUCCEEDED but its results file is not downloadable yet.
            return wire.error(404, f"File files/{file_id} not found.")
        # FileResponse streams the blob in small chunks: memory stays flat for 2 GB files.
        return FileResponse(self.s.store.file_blob(file_id), media_type=file.mime_type)

    async def files_list(self, request: Request) -> Response:
        await self._guard(request, "files.list")
        version = _version(request)
        size, token = _page_args(request, self.s.settings.get())
        await run_in_threadpool(self.s.store.purge_expired_files, self.s.clock())
        items, next_token = await run_in_threadpool(self.s.store.list_files, size, token)
        body: dict[str, Any] = {}
        if items:
            body["files"] = [wire.file_json(f, _base_url(request), version) for f in items]
        if next_token is not None:
            body["nextPageToken"] = next_token.encode()
        return JSONResponse(body)

    # ---- batches ---------------------------------------------------------------------------

    async def batch_create(self, request: Request) -> Response:
        _version(request)
        model_name, _, method = str(request.path_params["model"]).partition(":")
        kind = _METHODS.get(method)
        await self._guard(request, f"batches.create_{kind}" if kind else "models.unknown")
        if kind is None:
            return wire.error(404, f"Method models/{model_name}:{method} not found.")
        body = await _json_body(request)
        batch = _pick(body, "batch")
        if not isinstance(batch, dict):
            return wire.error(400, "batch is required")
        config = _pick(batch, "inputConfig", "input_config")
        if not isinstance(config, dict):
            return wire.error(400, "batch.input_config is required")
        file_name = _pick(config, "fileName", "file_name")
        requests_wrapper = _pick(config, "requests")
        inline_items = _pick(requests_wrapper, "requests")
        if (file_name is None) == (inline_items is None):
            return wire.error(400, "batch.input_config needs exactly one of file_name or requests")
        settings = self.s.settings.get()
        now = self.s.clock()
        active = await run_in_threadpool(self.s.store.open_batches_due_before, now)
        if active >= settings.max_concurrent_jobs:
            return wire.error(
                429,
                f"Too many concurrent batch jobs ({active}); the limit is {settings.max_concurrent_jobs}.",
            )
        batch_id = new_id(36)
        if file_name is not None:
            file_id = str(file_name).removeprefix("files/")
            file = await run_in_threadpool(self.s.store.get_file, file_id)
            if file is None:
                return wire.error(404, f"File {file_name} not found.")
            await run_in_threadpool(self.s.store.snapshot_input, file_id, batch_id)
            count = await run_in_threadpool(_count_lines, self.s.store.input_snapshot(batch_id))
        else:
            if not isinstance(inline_items, list) or not inline_items:
                return wire.error(
                    400, "batch.input_config.requests.requests must be a non-empty list"
                )
            items = [item if isinstance(item, dict) else {"request": item} for item in inline_items]
            await run_in_threadpool(
                self.s.store.inline_blob(batch_id, "requests").write_text,
                json.dumps(items, separators=(",", ":")),
            )
            count = len(items)
            file_id = None
        display = _pick(batch, "displayName", "display_name")
        row = BatchRow(
            id=batch_id,
            kind=kind,
            model=f"models/{model_name.removeprefix('models/')}",
            display_name=None if display is None else str(display),
            create_time=now,
            job_seconds=jobs.lifetime_seconds(settings),
            pending_seconds=jobs.pending_seconds(settings),
            expire_after=settings.job_ttl_seconds / settings.time_scale,
            forced_end=self.s.settings.take_forced_end(),
            input_file=file_id,
            inline=file_id is None,
            request_count=count,
            state=None,
            end_time=None,
            success_count=0,
            failed_count=0,
            output_file=None,
            request_error_rate=settings.request_error_rate,
            shuffle=settings.shuffle_inline_responses,
            undeletable_results=settings.undeletable_result_files,
            results_delay=settings.results_delay_seconds,
            file_ttl=settings.file_ttl_seconds / settings.time_scale,
        )
        await run_in_threadpool(self.s.store.insert_batch, row)
        # Creates run concurrently: checked again with this job counted, so the cap is never
        # passed (two racing creates may both be refused, as a busy service may refuse them).
        cap = settings.max_concurrent_jobs
        if await run_in_threadpool(self.s.store.open_batches_due_before, now) > cap:
            await run_in_threadpool(self.s.store.delete_batch, batch_id)
            return wire.error(429, f"Too many concurrent batch jobs; the limit is {cap}.")
        row = await run_in_threadpool(jobs.settle, self.s.store, row, now)  # job_seconds=0
        return JSONResponse(wire.operation_json(row, now, None))

    async def _settled(self, batch_id: str, now: float) -> BatchRow:
        # One `now` for settling and rendering: with two clock reads a job could be settled as
        # RUNNING and rendered as SUCCEEDED, without its output.
        batch = await run_in_threadpool(self.s.store.get_batch, batch_id)
        if batch is None:
            raise _Reject(wire.error(404, f"Batch batches/{batch_id} not found."))
        return await run_in_threadpool(jobs.settle, self.s.store, batch, now)

    async def batch_item(self, request: Request) -> Response:
        _version(request)
        batch_id, _, verb = str(request.path_params["name"]).partition(":")
        if request.method == "POST":
            await self._guard(request, "batches.cancel" if verb == "cancel" else "batches.unknown")
            if verb != "cancel":
                return wire.error(404, f"Method {verb!r} not found.")
            now = self.s.clock()
            batch = await self._settled(batch_id, now)
            # Cancel is instantly terminal (no CANCELLING state); on a finished job it is a no-op.
            if jobs.derive(batch, now).state not in jobs.TERMINAL:
                await run_in_threadpool(self.s.store.end_batch, batch_id, jobs.CANCELLED, now)
            return JSONResponse({})
        if request.method == "DELETE":
            await self._guard(request, "batches.delete")
            if not await run_in_threadpool(self.s.store.delete_batch, batch_id):
                return wire.error(404, f"Batch batches/{batch_id} not found.")
            return JSONResponse({})
        await self._guard(request, "batches.get")
        if verb:
            return wire.error(404, f"Method {verb!r} not found.")
        now = self.s.clock()
        batch = await self._settled(batch_id, now)
        responses = await run_in_threadpool(jobs.inline_responses, self.s.store, batch)
        return JSONResponse(wire.operation_json(batch, now, responses))

    async def batches_list(self, request: Request) -> Response:
        await self._guard(request, "batches.list")
        _version(request)
        size, token = _page_args(request, self.s.settings.get())
        items, next_token = await run_in_threadpool(self.s.store.list_batches, size, token)
        now = self.s.clock()
        settled = [await run_in_threadpool(jobs.settle, self.s.store, b, now) for b in items]
        body: dict[str, Any] = {}
        if settled:
            body["operations"] = [wire.operation_json(b, now, None) for b in settled]
        if next_token is not None:
            body["nextPageToken"] = next_token.encode()
        return JSONResponse(body)

    # ---- admin -----------------------------------------------------------------------------

    # The admin routes are a test tool: they switch authentication and faults. So they demand
    # the API key whenever one is set (else one request turns authentication off), and a JSON
    # Content-Type on writes: a web page can POST a "simple" form or text/plain body across
    # origins without a preflight, but not application/json.
    def _admin_guard(self, request: Request) -> None:
        expected = self.s.settings.get().api_key
        if expected is not None:
            key = request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
            if not hmac.compare_digest(key.strip().encode(), expected.encode()):
                raise _Reject(wire.error(403, "the emulator's admin API needs its API key"))
        if request.method in ("POST", "PATCH", "PUT", "DELETE"):
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                raise _Reject(
                    wire.error(415, "the emulator's admin API takes Content-Type: application/json")
                )

    async def admin_settings(self, request: Request) -> Response:
        self._admin_guard(request)
        if request.method in ("POST", "PATCH"):
            body = await _json_body(request)
            if not isinstance(body, dict):
                return wire.error(400, "expected a JSON object of settings")
            try:
                self.s.settings.update(**coerce_changes(body))
            except (ValueError, TypeError) as exc:
                return wire.error(400, str(exc))
        return JSONResponse(self.s.settings.get().to_json())

    async def admin_calls(self, request: Request) -> Response:
        self._admin_guard(request)
        return JSONResponse(self.s.faults.calls())

    async def admin_calls_reset(self, request: Request) -> Response:
        self._admin_guard(request)
        self.s.faults.reset_calls()
        return JSONResponse({})


def _count_lines(path: Path) -> int:
    """Requests in a JSONL input (non-blank lines), counted by streaming the blob."""
    count = 0
    with path.open("rb") as blob:
        for line in blob:
            if line.strip():
                count += 1
    return count


async def _not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return wire.error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
    return wire.error(500, "internal error")


def create_app(state: EmulatorState) -> Starlette:
    """The ASGI application for one emulator state."""
    r = Routes(state)
    e = r.endpoint
    routes = [
        Route("/upload/{version}/files", e(r.upload), methods=["POST"]),
        Route("/download/{version}/files/{name}", e(r.download_alias), methods=["GET"]),
        Route("/{version}/files", e(r.files_list), methods=["GET"]),
        Route("/{version}/files/{name}", e(r.file_item), methods=["GET", "DELETE"]),
        Route("/{version}/models/{model}", e(r.batch_create), methods=["POST"]),
        Route("/{version}/batches", e(r.batches_list), methods=["GET"]),
        Route("/{version}/batches/{name}", e(r.batch_item), methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/settings", e(r.admin_settings), methods=["GET", "POST", "PATCH"]),
        Route("/_emulator/calls", e(r.admin_calls), methods=["GET"]),
        Route("/_emulator/calls/reset", e(r.admin_calls_reset), methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _not_found})
