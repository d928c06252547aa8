"""The emulator's ASGI application: the routes of Files, Batches, Models and `/_emulator/`.

Routes exist under `/v1` (the SDK's default), `/v1beta` and `/v1alpha` (pitfall 1). Success is
always HTTP 200 with a JSON body (`{}` for delete/cancel), since the SDK treats any other 2xx as
an error (pitfall 14). Handlers live in one module per resource (routes_files, routes_batches,
routes_models, routes_vertex (Vertex AI batchPredictionJobs), admin); plumbing in plumbing.py.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.emulator import wire
from reconciler.emulator.admin import AdminRoutes
from reconciler.emulator.partial import PartialResponses
from reconciler.emulator.plumbing import EmulatorState, endpoint
from reconciler.emulator.routes_batches import BatchRoutes
from reconciler.emulator.routes_files import FileRoutes
from reconciler.emulator.routes_models import ModelRoutes
from reconciler.emulator.routes_vertex import VertexRoutes

__all__ = ["EmulatorState", "create_app"]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the service's error shape."""
    if isinstance(exc, HTTPException):
        headers = dict(exc.headers) if exc.headers else None
        return wire.error(
            exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", headers=headers
        )
    return wire.error(500, "internal error")


_SERVICE_SPELLING = {
    name.lower().encode(): name.encode()
    for name in (
        "Content-Type",
        "Content-Length",
        "Content-Disposition",
        "Date",
        "Server",
        "Retry-After",
        "X-Goog-Upload-URL",
        "X-Goog-Upload-Status",
        "X-Goog-Upload-Size-Received",
        "X-Goog-Upload-Chunk-Granularity",
    )
}


class ServiceHeaderNames:
    """Response header names spelled as the service's front end writes them over HTTP/1.1
    (`Content-Type`, `X-Goog-Upload-URL`), where Starlette lower-cases every name.

    Header names are case-insensitive, but clients that copy them into a plain dict see the
    spelling: google-genai's aio client (aiohttp) keeps it in `sdk_http_response.headers`, its
    own tests look up `'Content-Type'` there, and its async upload finds the upload URL only as
    `x-goog-upload-url` or `X-Goog-Upload-URL`. Names not listed pass unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def spelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(_SERVICE_SPELLING.get(n, n), v) for n, v in message["headers"]]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, spelled)


def create_app(state: EmulatorState) -> Starlette:
    """The ASGI application for one emulator state."""
    files = FileRoutes(state)
    batches = BatchRoutes(state)
    models = ModelRoutes(state, batches)
    admin = AdminRoutes(state, batches)
    vertex = VertexRoutes(state)
    jobs_path = "/{version}/projects/{project}/locations/{location}/batchPredictionJobs"
    e = endpoint
    routes = [
        Route("/upload/{version}/files", e(files.upload), methods=["POST"]),
        Route("/download/{version}/files/{name}", e(files.download_alias), methods=["GET"]),
        Route("/{version}/files", e(files.files_list), methods=["GET"]),
        Route("/{version}/files:register", e(files.register), methods=["POST"]),
        Route("/{version}/files/{name}", e(files.file_item), methods=["GET", "DELETE"]),
        Route("/{version}/models", e(models.list), methods=["GET"]),
        Route("/{version}/models/{model}", e(models.item), methods=["GET", "POST"]),
        Route("/{version}/batches", e(batches.list), methods=["GET"]),
        Route(
            "/{version}/batches/{name}", e(batches.item), methods=["GET", "POST", "PATCH", "DELETE"]
        ),
        Route(jobs_path, e(vertex.collection), methods=["GET", "POST"]),
        Route(jobs_path + "/{job}", e(vertex.item), methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/settings", e(admin.settings), methods=["GET", "POST", "PATCH"]),
        Route("/_emulator/calls", e(admin.calls), methods=["GET"]),
        Route("/_emulator/calls/reset", e(admin.calls_reset), methods=["POST"]),
        Route("/_emulator/models", e(admin.models), methods=["GET", "POST"]),
        Route("/_emulator/resources", e(admin.resources), methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(ServiceHeaderNames), Middleware(PartialResponses)],
    )
