"""The `/_emulator/` admin API: settings, call counts, the model catalogue, seeded resources.

Not part of Google's API: a test tool. Tests and operators use it to configure a running
emulator (faults, settings, authentication included), so it demands the API key whenever one is
set (else one request turns authentication off) and a JSON Content-Type on writes (a web page can
POST a form or text/plain body across origins without a preflight, but not application/json). Seeding
creates files and batches under chosen names (`files/<id>`, `batches/<id>`), for tests that
replay recorded ids; seeded batches follow the same lifecycle as created ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.emulator import wire
from reconciler.emulator.catalogue import EMBED, GENERATE, ModelInfo
from reconciler.emulator.file_rules import check_file_id, processing_seconds
from reconciler.emulator.plumbing import EmulatorState, Reject, json_body, pick
from reconciler.emulator.routes_batches import BatchRoutes
from reconciler.emulator.rows import FileRow
from reconciler.emulator.settings import coerce_changes


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Reject(wire.error(400, "expected a JSON object"))
    return body


class AdminRoutes:
    """Admin handlers bound to one EmulatorState."""

    def __init__(self, state: EmulatorState, batches: BatchRoutes) -> None:
        self.s = state
        self.batches = batches

    def _guard(self, request: Request) -> None:
        """Refuse a call without the API key (when one is set), or a write that is not JSON."""
        expected = self.s.settings.get().api_key
        if expected is not None:
            key = request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
            if not hmac.compare_digest(key.strip().encode(), expected.encode()):
                raise Reject(wire.error(403, "the emulator's admin API needs its API key"))
        if request.method in ("POST", "PATCH", "PUT", "DELETE"):
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                raise Reject(
                    wire.error(415, "the emulator's admin API takes Content-Type: application/json")
                )

    async def settings(self, request: Request) -> Response:
        self._guard(request)
        if request.method in ("POST", "PATCH"):
            body = await json_body(request)
            if not isinstance(body, dict):
                return wire.error(400, "expected a JSON object of settings")
            try:
                self.s.settings.update(**coerce_changes(body))
            except (ValueError, TypeError) as exc:
                return wire.error(400, str(exc))
        return JSONResponse(self.s.settings.get().to_json())

    async def calls(self, request: Request) -> Response:
        self._guard(request)
        return JSONResponse(self.s.faults.calls())

    async def calls_reset(self, request: Request) -> Response:
        self._guard(request)
        self.s.faults.reset_calls()
        return JSONResponse({})

    async def models(self, request: Request) -> Response:
        """GET: the catalogue. POST `{"models": [Model...], "replace": bool}`: add models, or
        make them the whole catalogue."""
        self._guard(request)
        if request.method == "POST":
            body = _object(await json_body(request))
            raw = body.get("models")
            if not isinstance(raw, list):
                return wire.error(400, "`models` must be a list of Model objects")
            try:
                models = [ModelInfo.from_json(item) for item in raw]
            except ValueError as exc:
                return wire.error(400, str(exc))
            self.s.catalogue.put(*models, replace_all=bool(body.get("replace")))
        return JSONResponse({"models": [m.to_json() for m in self.s.catalogue.all()]})

    async def resources(self, request: Request) -> Response:
        """POST `{"files": [...], "batches": [...]}`: create resources under chosen names.

        A file: `{"name": "files/<id>", "content": text | "contentBase64": b64, "mimeType",
        "displayName"?, "source"?: "UPLOADED" | "GENERATED"}`. A batch: `{"name": "batches/<id>",
        "model": "models/...", "method"?: "asyncBatchEmbedContent", "displayName"?,
        "priority"?, "inputConfig": {"fileName"} | {"requests": {"requests": [...]}}}`.
        Answers the created resources as the API shows them; 409 when a name is taken.
        """
        self._guard(request)
        body = _object(await json_body(request))
        files = [await self._seed_file(_object(f)) for f in body.get("files") or []]
        now = self.s.clock()
        operations = [await self._seed_batch(_object(b)) for b in body.get("batches") or []]
        return JSONResponse(
            {
                "files": [wire.file_json(f, str(request.base_url).rstrip("/"), now) for f in files],
                "operations": operations,
            }
        )

    async def _seed_file(self, spec: dict[str, Any]) -> FileRow:
        file_id = str(spec.get("name", "")).removeprefix("files/")
        check_file_id(file_id)
        try:
            if "contentBase64" in spec:
                data = base64.b64decode(str(spec["contentBase64"]), validate=True)
            else:
                data = str(spec.get("content", "")).encode()
        except (binascii.Error, ValueError) as exc:
            raise Reject(wire.error(400, f"files/{file_id}: bad contentBase64")) from exc
        source = str(spec.get("source", "UPLOADED"))
        if source not in ("UPLOADED", "GENERATED"):
            raise Reject(wire.error(400, f"files/{file_id}: source must be UPLOADED or GENERATED"))
        settings = self.s.settings.get()
        mime = str(spec.get("mimeType", "application/octet-stream"))
        now = self.s.clock()
        file = FileRow(
            file_id,
            None if spec.get("displayName") is None else str(spec["displayName"]),
            mime,
            len(data),
            base64.b64encode(hashlib.sha256(data).digest()).decode(),
            now,
            now + settings.file_ttl_seconds / settings.time_scale,
            source,
            now,
            source == "GENERATED" and settings.undeletable_result_files,
            now + processing_seconds(mime, settings),
        )
        if not await run_in_threadpool(self.s.store.insert_file, file, data):
            raise Reject(wire.error(409, f"File files/{file_id} already exists."))
        return file

    async def _seed_batch(self, spec: dict[str, Any]) -> dict[str, Any]:
        batch_id = str(spec.get("name", "")).removeprefix("batches/")
        if not batch_id or "/" in batch_id or not batch_id.replace("-", "").isalnum():
            raise Reject(wire.error(400, f"bad batch name {spec.get('name')!r}"))
        method = str(spec.get("method", GENERATE))
        if method not in (GENERATE, EMBED):
            raise Reject(wire.error(400, f"method must be {GENERATE} or {EMBED}"))
        model_id = str(spec.get("model", "")).removeprefix("models/")
        config = pick(spec, "inputConfig", "input_config")
        file_name = pick(config, "fileName", "file_name")
        items = pick(pick(config, "requests"), "requests")
        source = await self.batches.store_input(batch_id, file_name, items)
        kind = "embed" if method == EMBED else "generate"
        now = self.s.clock()
        priority = int(spec.get("priority", 0))
        row = self.batches.new_row(
            batch_id, kind, model_id, spec.get("displayName"), source, priority, now
        )
        if not await run_in_threadpool(self.s.store.insert_batch, row):
            raise Reject(wire.error(409, f"Batch batches/{batch_id} already exists."))
        return wire.operation_json(row, now, None)
