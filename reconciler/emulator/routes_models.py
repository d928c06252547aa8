"""Models routes: `models.get`, `models.list`, and `models/{model}:{method}` to the batch routes.

`GET models/{id}` answers the catalogue's `Model` resource (catalogue.py) or 404; `GET models`
lists it in pages. `POST models/{id}:batchGenerateContent` / `:asyncBatchEmbedContent` create
batches (routes_batches.py); any other method is not served here (404, as an unknown method).
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.emulator import wire
from reconciler.emulator.plumbing import EmulatorState, guard, page_size, version
from reconciler.emulator.routes_batches import METHODS, BatchRoutes

_DEFAULT_MODELS_PAGE = 50


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("models:"))
    except ValueError:
        return -1


class ModelRoutes:
    """Models handlers bound to one EmulatorState."""

    def __init__(self, state: EmulatorState, batches: BatchRoutes) -> None:
        self.s = state
        self.batches = batches

    async def item(self, request: Request) -> Response:
        model_id, _, method = str(request.path_params["model"]).partition(":")
        if request.method == "POST":
            if method in METHODS:
                return await self.batches.create(request, model_id, method)
            version(request)
            await guard(self.s, request, "models.unknown")
            return wire.error(404, f"Method models/{model_id}:{method} not found.")
        api_version = version(request)
        await guard(self.s, request, "models.get")
        if method:
            return wire.error(404, f"Method {method!r} not found.")
        info = self.s.catalogue.get(model_id)
        if info is None:
            return wire.error(404, f"models/{model_id} is not found for API version {api_version}.")
        return JSONResponse(info.to_json())

    async def list(self, request: Request) -> Response:
        version(request)
        await guard(self.s, request, "models.list")
        size = page_size(request, _DEFAULT_MODELS_PAGE)
        start = _offset(request.query_params.get("pageToken"))
        models = self.s.catalogue.all()
        if start < 0 or start > len(models):
            return wire.error(400, "Invalid page token.")
        page = models[start : start + size]
        body: dict[str, Any] = {}
        if page:
            body["models"] = [m.to_json() for m in page]
        if start + size < len(models):
            body["nextPageToken"] = base64.urlsafe_b64encode(
                f"models:{start + size}".encode()
            ).decode()
        return JSONResponse(body)
