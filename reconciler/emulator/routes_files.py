"""Files routes: resumable and multipart upload, get, list, delete, download, register.

Strict by default, as the service is: unknown metadata fields and unsupported MIME types are
refused at upload; files created by upload (or registered) cannot be downloaded, only generated
ones; a file id longer than 40 characters (every batch results file, `files/batch-<36>`) cannot
be deleted (python-genai #1759); audio and video files are PROCESSING for a while before they
are ACTIVE. Each leniency is a setting (settings.py), off by default.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from reconciler.emulator import multipart, query, validation, wire
from reconciler.emulator.file_rules import (
    check_display_name,
    check_file_id,
    check_mime,
    processing_seconds,
)
from reconciler.emulator.plumbing import (
    EmulatorState,
    Reject,
    base_url,
    guard,
    json_body,
    next_page_token,
    page_args,
    pick,
    version,
)
from reconciler.emulator.rows import FileRow, UploadRow
from reconciler.emulator.settings import EmulatorSettings
from reconciler.emulator.store import new_id

CHUNK_GRANULARITY = 8 * 1024 * 1024
MAX_FILE_ID = 40
_CHUNK_COMMANDS = frozenset({"upload", "finalize", "query"})
"""What a session's requests may say in X-Goog-Upload-Command (protocol §2.1)."""
_TOO_LONG = (
    "* DeleteFileRequest.name: File ID (name excluding 'files/') cannot be more than 40"
    " characters.\n"
)


class FileRoutes:
    """Files handlers bound to one EmulatorState."""

    def __init__(self, state: EmulatorState) -> None:
        self.s = state

    # ---- upload ----------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        # Chunks carry Content-Type: application/json but raw bytes, and no API key: route by
        # upload_id, which is the credential (pitfalls 3 and 4).
        upload_id = request.query_params.get("upload_id")
        if upload_id:
            await guard(self.s, request, "files.upload_chunk", auth=False)
            return await self._upload_chunk(request, upload_id)
        protocol = request.headers.get("x-goog-upload-protocol", "").lower()
        if protocol == "multipart" or request.query_params.get("uploadType") == "multipart":
            await guard(self.s, request, "files.upload_multipart")
            return await self._upload_multipart(request)
        await guard(self.s, request, "files.upload_start")
        if protocol != "resumable":
            return wire.error(
                400,
                f"Unsupported X-Goog-Upload-Protocol {protocol!r}: this endpoint takes"
                " resumable (X-Goog-Upload-Command: start) or multipart uploads.",
            )
        command = request.headers.get("x-goog-upload-command", "").strip().lower()
        if command != "start":
            return wire.error(
                400,
                f"A resumable upload starts with X-Goog-Upload-Command: start, got {command!r}.",
            )
        return await self._upload_start(request)

    async def _new_upload(
        self, meta: Any, declared: int | None, mime_header: str | None
    ) -> UploadRow:
        """Check the metadata of a new file and open its upload session."""
        settings = self.s.settings.get()
        if declared is not None and declared > settings.max_file_bytes:
            raise Reject(
                wire.error(
                    400,
                    f"File size {declared} exceeds the limit of {settings.max_file_bytes} bytes.",
                )
            )
        name = pick(meta, "name")
        file_id = str(name).removeprefix("files/") if name else new_id(12)
        check_file_id(file_id)
        mime = str(mime_header or pick(meta, "mimeType", "mime_type") or "application/octet-stream")
        check_mime(mime, settings)
        display = pick(meta, "displayName", "display_name")
        check_display_name(display)
        upload = UploadRow(
            new_id(32),
            file_id,
            None if display is None else str(display),
            mime,
            declared,
            0,
            self.s.clock(),
        )
        # One worker-thread hop for the session's store work, not one per query.
        await run_in_threadpool(self._open_session, upload, settings)
        return upload

    def _open_session(self, upload: UploadRow, settings: EmulatorSettings) -> None:
        """Store `upload` unless its file id is taken or the storage quota is full (in a worker
        thread)."""
        store = self.s.store
        store.purge_expired_files(upload.create_time)
        if store.file_exists(upload.file_id):
            raise Reject(wire.error(409, f"File files/{upload.file_id} already exists."))
        if store.used_bytes() + (upload.declared_size or 0) > settings.storage_quota_bytes:
            raise Reject(
                wire.error(
                    429,
                    f"Storage quota of {settings.storage_quota_bytes} bytes exceeded.",
                    details=wire.quota_details(
                        "file_storage_bytes", None, settings.storage_quota_bytes
                    ),
                )
            )
        store.start_upload(upload)

    async def _upload_start(self, request: Request) -> Response:
        api_version = version(request)
        body = await json_body(request)
        if violations := validation.upload_start(body, api_version):
            return wire.bad_request(violations)
        meta = pick(body, "file") or {}
        size_text = request.headers.get("x-goog-upload-header-content-length") or pick(
            meta, "sizeBytes", "size_bytes"
        )
        try:
            declared = int(size_text) if size_text not in (None, "") else None
        except (TypeError, ValueError):
            return wire.error(400, f"Invalid upload size {size_text!r}")
        if declared is not None and declared < 0:  # a byte count: never negative
            return wire.error(400, f"Invalid upload size {size_text!r}")
        upload = await self._new_upload(
            meta, declared, request.headers.get("x-goog-upload-header-content-type")
        )
        url = (
            f"{base_url(request)}/upload/{api_version}/files"
            f"?upload_id={upload.id}&upload_protocol=resumable"
        )
        return Response(
            b"",
            headers={
                "X-Goog-Upload-URL": url,
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
            },
        )

    async def _upload_multipart(self, request: Request) -> Response:
        """One `multipart/related` request: JSON metadata, then the bytes."""
        api_version = version(request)
        limit = self.s.settings.get().max_file_bytes
        body = await request.body()
        if len(body) > limit + 64 * 1024:
            return wire.error(400, f"Upload exceeds {limit} bytes.")
        try:
            meta_body, data, data_type = multipart.split_related(
                request.headers.get("content-type", ""), body
            )
        except ValueError as exc:
            return wire.error(400, str(exc))
        if violations := validation.upload_start(meta_body, api_version):
            return wire.bad_request(violations)
        meta = pick(meta_body, "file") or {}
        upload = await self._new_upload(meta, len(data), data_type)
        await run_in_threadpool(self.s.store.upload_blob(upload.id).write_bytes, data)
        file = await run_in_threadpool(
            self._finalize, upload, len(data), hashlib.sha256(data).digest()
        )
        return JSONResponse({"file": wire.file_json(file, base_url(request), self.s.clock())})

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
        if unknown := sorted(commands - _CHUNK_COMMANDS):
            return wire.error(
                400,
                f"Unsupported X-Goog-Upload-Command {', '.join(unknown)!r} on an upload session:"
                " expected upload, finalize or query.",
                headers=fail,
            )
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
        received = await self._receive(request, upload, fail)
        finalizing = "finalize" in commands and (
            upload.declared_size is None or received == upload.declared_size
        )
        if not finalizing:
            await run_in_threadpool(self.s.store.set_upload_received, upload.id, received)
        if "finalize" not in commands:
            return Response(b"", headers={"X-Goog-Upload-Status": "active"})
        if not finalizing:
            return wire.error(
                400,
                f"Upload finalized after {received} of {upload.declared_size} bytes.",
                headers=fail,
            )
        progress = self.s.hashers.pop(upload.id, None)
        digest = progress[1].digest() if progress is not None and progress[0] == received else None
        file = await run_in_threadpool(self._received_and_final, upload, received, digest)
        # The SDK reads json['file'] from the final reply (pitfall 6).
        return JSONResponse(
            {"file": wire.file_json(file, base_url(request), self.s.clock())},
            headers={"X-Goog-Upload-Status": "final"},
        )

    async def _receive(self, request: Request, upload: UploadRow, fail: dict[str, str]) -> int:
        """Append one chunk's body to the upload blob; return the bytes received so far."""
        limit = self.s.settings.get().max_file_bytes
        if upload.declared_size is not None:
            limit = min(limit, upload.declared_size)
        received = upload.received
        path = self.s.store.upload_blob(upload.id)
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
                    raise Reject(wire.error(400, f"Upload exceeds {limit} bytes.", headers=fail))
                blob.write(piece)
                if sha is not None:
                    sha.update(piece)
        if sha is not None:
            self.s.hashers[upload.id] = (received, sha)
        return received

    def _received_and_final(
        self, upload: UploadRow, received: int, digest: bytes | None
    ) -> FileRow:
        """Record the bytes received, then turn the session into a file: one worker-thread hop."""
        self.s.store.set_upload_received(upload.id, received)
        return self._finalize(upload, received, digest)

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
            now + processing_seconds(upload.mime_type, settings),
        )
        self.s.store.finalize_upload(upload, file)
        return file

    # ---- get / list / delete / download ----------------------------------------------------

    async def _live_file(self, file_id: str) -> FileRow:
        return await run_in_threadpool(self._live_file_now, file_id)

    def _live_file_now(self, file_id: str) -> FileRow:
        self.s.store.purge_expired_files(self.s.clock())
        file = self.s.store.get_file(file_id)
        if file is None:
            raise Reject(wire.error(404, f"File files/{file_id} not found."))
        return file

    def _delete_live_file(self, file_id: str) -> Response:
        """`files.delete` in one worker-thread hop: the expiry sweep, the look-up, the delete."""
        file = self._live_file_now(file_id)
        if len(file_id) > MAX_FILE_ID and file.undeletable:
            # python-genai #1759: result ids are 42 chars, DeleteFileRequest allows 40.
            return wire.error(400, _TOO_LONG)
        self.s.store.delete_file(file_id)
        return JSONResponse({})

    async def file_item(self, request: Request) -> Response:
        version(request)
        name = str(request.path_params["name"])
        file_id, _, verb = name.partition(":")
        if verb == "download" and request.method == "GET":
            await guard(self.s, request, "files.download")
            return await self._download(request, file_id)
        if verb:
            await guard(self.s, request, "files.unknown")
            return wire.error(404, f"Method {verb!r} not found.")
        if request.method == "DELETE":
            await guard(self.s, request, "files.delete")
            return await run_in_threadpool(self._delete_live_file, file_id)
        await guard(self.s, request, "files.get")
        file = await self._live_file(file_id)
        return JSONResponse(wire.file_json(file, base_url(request), self.s.clock()))

    async def download_alias(self, request: Request) -> Response:
        # /download/v1beta/files/<id>:download?alt=media, the form of the real downloadUri.
        version(request)
        await guard(self.s, request, "files.download")
        file_id, _, verb = str(request.path_params["name"]).partition(":")
        if verb != "download":
            return wire.error(404, f"Method {verb!r} not found.")
        return await self._download(request, file_id)

    async def _download(self, request: Request, file_id: str) -> Response:
        file = await self._live_file(file_id)
        if query.alt(request.query_params) != "media":
            # Without alt=media the method answers its JSON response, DownloadFileResponse,
            # which has no fields: the bytes come only as media.
            return JSONResponse({})
        if file.source != "GENERATED" and not self.s.settings.get().download_uploaded_files:
            # "Files created by `upload` can't be downloaded" (SDK files.download docstring).
            return wire.error(
                400, f"Cannot download files/{file_id}: only generated files can be downloaded."
            )
        if file.available_time > self.s.clock():
            # Quirk: the job says SUCCEEDED but its results file is not downloadable yet.
            return wire.error(404, f"File files/{file_id} not found.")
        # FileResponse streams the blob in small chunks: memory stays flat for 2 GB files.
        return FileResponse(self.s.store.file_blob(file_id), media_type=file.mime_type)

    async def files_list(self, request: Request) -> Response:
        await guard(self.s, request, "files.list")
        version(request)
        size, token = page_args(request, self.s.settings.get(), "files")
        now = self.s.clock()
        await run_in_threadpool(self.s.store.purge_expired_files, now)
        items, next_token = await run_in_threadpool(self.s.store.list_files, size, token)
        body: dict[str, Any] = {}
        if items:
            body["files"] = [wire.file_json(f, base_url(request), now) for f in items]
        if next_token is not None:
            body["nextPageToken"] = next_page_token("files", next_token)
        return JSONResponse(body)

    # ---- register --------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        """`files:register`: Cloud Storage objects as REGISTERED files (the SDK sends OAuth
        credentials: `files.register_files(auth=...)` requires them)."""
        api_version = version(request)
        await guard(self.s, request, "files.register")
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            return wire.error(
                401, "Request is missing required authentication credential.", "UNAUTHENTICATED"
            )
        body = await json_body(request)
        if violations := validation.register_files(body, api_version):
            return wire.bad_request(violations)
        uris = pick(body, "uris")
        if not isinstance(uris, list) or not uris:
            return wire.bad_request([("uris", "uris must be a non-empty list of gs:// URIs")])
        bad = [
            (f"uris[{i}]", f"Invalid URI {u!r}: expected gs://bucket/object")
            for i, u in enumerate(uris)
            if not (isinstance(u, str) and u.startswith("gs://") and "/" in u[5:])
        ]
        if bad:
            return wire.bad_request(bad)
        now = self.s.clock()
        files = [await run_in_threadpool(self._register_one, str(uri), now) for uri in uris]
        return JSONResponse({"files": [wire.file_json(f, base_url(request), now) for f in files]})

    def _register_one(self, uri: str, now: float) -> FileRow:
        settings = self.s.settings.get()
        mime = mimetypes.guess_type(uri)[0] or "application/octet-stream"
        file = FileRow(
            new_id(12),
            uri.rsplit("/", 1)[-1],
            mime,
            0,
            "",
            now,
            now + settings.file_ttl_seconds / settings.time_scale,
            "REGISTERED",
            now,
            False,
            now + processing_seconds(mime, settings),
        )
        self.s.store.insert_file(file)
        return file
