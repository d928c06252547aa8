"""The web view's Starlette app: GET routes only, each reading what it shows at request time.

Read-only by construction: no route takes a body or changes anything; the only files it writes
are its own indexes under `.reconciler/`. What it reads comes through `UiSources` (the CLI
wires the state backend, the manifests and the service), so the app itself holds no secret and
opens no connection of its own.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from reconciler.errors import ReconcilerError
from reconciler.state.document import AttemptPurpose
from reconciler.ui.files import OutputFetcher, Prompts, existing_file, results_file
from reconciler.ui.html import SCRIPT, STYLESHEET
from reconciler.ui.lineindex import KeyIndex, LineIndex
from reconciler.ui.pages import costs_page, error_page, overview_page, resource_page
from reconciler.ui.records import ResultView, is_failure, result_view, text_matcher
from reconciler.ui.results_page import (
    PAGE_ROWS as PAGE_SIZE,
)
from reconciler.ui.results_page import (
    DiffSide,
    ResultsPage,
    ResultsQuery,
    diff_page,
    results_page,
)
from reconciler.ui.views import Snapshot

MAX_QUERY_CHARS = 200
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

_HEADERS = {
    # Nothing is loaded from elsewhere: the page works offline and a results line cannot pull
    # in a script. Inline styles are allowed for the chart's legend swatches only.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class UiSources:
    """What the app reads, supplied by the CLI.

    `snapshot(with_live)` reads the state and the manifests, and with `with_live` also lists
    the service's jobs and plans against them (the overview and resource pages); the results
    viewer asks without, so paging never waits for the service.
    """

    root: Path
    project: str
    snapshot: Callable[[bool], Snapshot]
    fetch_output: OutputFetcher | None = None


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def _int(value: str | None, default: int, low: int = 0) -> int:
    try:
        return max(low, int(value)) if value is not None else default
    except ValueError:
        return default


class _Handlers:
    def __init__(self, sources: UiSources) -> None:
        self.s = sources

    def _missing(self, message: str) -> HTMLResponse:
        return _html(error_page(404, message, self.s.project), 404)

    def overview(self, request: Request) -> Response:
        return _html(overview_page(self.s.snapshot(True), self.s.project))

    def costs(self, request: Request) -> Response:
        label = request.query_params.get("label")
        return _html(costs_page(self.s.snapshot(False), label, self.s.project))

    def resource(self, request: Request) -> Response:
        name = request.path_params["name"]
        snapshot = self.s.snapshot(True)
        desired = snapshot.desired.resources.get(name) if snapshot.desired else None
        if desired is None and name not in snapshot.state.resources:
            return self._missing(f"No resource named {name!r} in the manifests or the state.")
        manifest = None
        if desired is not None:
            path = existing_file(self.s.root, desired.location.path)
            manifest = path.read_text("utf-8", errors="replace") if path else None
        return _html(resource_page(snapshot, name, manifest, self.s.project))

    def results(self, request: Request) -> Response:
        name = request.path_params["name"]
        snapshot = self.s.snapshot(False)
        record = snapshot.state.resources.get(name)
        path = results_file(self.s.root, record)
        if record is None or record.results is None:
            return self._missing(f"{name} has no collected results yet.")
        if path is None:
            return self._missing(
                f"{name}'s results at {record.results.location} are not a file in this "
                "project: the viewer reads local results only."
            )
        params = request.query_params
        query = ResultsQuery(
            page=_int(params.get("page"), 1, low=1),
            query=params.get("q", "")[:MAX_QUERY_CHARS],
            failures=params.get("failures") in ("1", "on", "true"),
            start=_int(params.get("start"), 0),
        )
        index = LineIndex.open(path, self.s.root)
        next_start = None
        if query.filtered:
            search = text_matcher(query.query) if query.query else None

            def matches(raw: bytes) -> bool:
                return (not query.failures or is_failure(raw)) and (search is None or search(raw))

            lines, next_start = index.scan(query.start, matches, PAGE_SIZE)
        else:
            lines = index.lines((query.page - 1) * PAGE_SIZE, PAGE_SIZE)
        # A prefix index knows no line count yet: the pager says "about" until it does.
        total = index.count if index.complete else index.estimated_count()
        desired = snapshot.desired.resources.get(name) if snapshot.desired else None
        prompts = Prompts(self.s.root, desired)
        rows = []
        for number, raw in lines:
            view = result_view(number, raw)
            rows.append((view, prompts.prompt(view.key, number)))
        newest = record.current_number
        compare = sorted(
            {a.number for a in record.attempts if a.job_name and a.number != newest}
            if self.s.fetch_output is not None
            else set()
        )
        shown = ResultsPage(
            resource=name,
            location=record.results.location,
            total_lines=total,
            exact=index.complete,
            rows=rows,
            query=query,
            pages=-(-total // PAGE_SIZE),
            next_start=next_start,
            compare=compare,
        )
        return _html(results_page(shown, self.s.project))

    def image(self, request: Request) -> Response:
        name = request.path_params["name"]
        record = self.s.snapshot(False).state.resources.get(name)
        path = results_file(self.s.root, record)
        relative = request.path_params["path"]
        target = existing_file(self.s.root, relative, within=path.parent) if path else None
        mime = mimetypes.guess_type(relative)[0] or ""
        if target is None or not mime.startswith("image/") or mime == "image/svg+xml":
            return self._missing("No such image beside this resource's results.")
        return FileResponse(target, media_type=mime, headers=_HEADERS)

    def _side(self, name: str, number: int, key: str, snapshot: Snapshot) -> DiffSide:
        """Attempt `number`'s answer to `key`: from that attempt's own results at the service
        (the collected copy merges several attempts), else from the collected copy when it
        holds that attempt's results alone."""
        record = snapshot.state.resources[name]
        title = f"attempt {number}"
        jobs = [a.job_name for a in record.attempts if a.number == number and a.job_name]
        partial = any(
            a.purpose is not AttemptPurpose.FULL for a in record.attempts if a.number == number
        )
        if self.s.fetch_output is not None and jobs:
            fetched = [p for p in (self.s.fetch_output(job) for job in jobs) if p is not None]
            if fetched:
                view = self._find(fetched, key)
                missing = (
                    f"{title} ran only some requests (new, changed or failed ones), not this one"
                    if partial
                    else None
                )
                return DiffSide(f"{title} (its results at the service)", view, missing)
        results = record.results
        path = results_file(self.s.root, record)
        if results is not None and path is not None and results.from_attempts == (number,):
            return DiffSide(f"{title} (the collected results)", self._find([path], key))
        return DiffSide(title, None, f"{title}'s own results are not available any more")

    def _find(self, paths: list[Path], key: str) -> ResultView | None:
        for path in paths:
            index = LineIndex.open(path, self.s.root)
            number = KeyIndex(index).line_of(key)
            raw = index.line(number) if number is not None else None
            if raw is not None:
                return result_view(number or 0, raw)
        return None

    def diff(self, request: Request) -> Response:
        name = request.path_params["name"]
        snapshot = self.s.snapshot(False)
        record = snapshot.state.resources.get(name)
        key = request.query_params.get("key", "")
        if record is None or not key:
            return self._missing("Name a resource and a request key to compare.")
        a = _int(request.query_params.get("a"), 0)
        b = _int(request.query_params.get("b"), record.current_number)
        known = {attempt.number for attempt in record.attempts}
        if a not in known or b not in known:
            return self._missing(f"{name} has no attempt {a if a not in known else b}.")
        left, right = self._side(name, a, key, snapshot), self._side(name, b, key, snapshot)
        return _html(diff_page(name, key, left, right, self.s.project))


def _static(text: str, media_type: str) -> Callable[[Request], Response]:
    def serve(request: Request) -> Response:
        return Response(text, media_type=media_type, headers=_HEADERS)

    return serve


def create_app(sources: UiSources, *, allowed_hosts: tuple[str, ...] = LOCAL_HOSTS) -> Starlette:
    """The web view over `sources`. Only GET (and HEAD) routes exist: any other method is 405.

    `allowed_hosts`: the Host headers answered (default: loopback names only), so a page on
    another site cannot reach the view through DNS rebinding.
    """
    h = _Handlers(sources)
    get = ["GET"]
    routes = [
        Route("/", h.overview, methods=get),
        Route("/costs", h.costs, methods=get),
        Route("/resources/{name}", h.resource, methods=get),
        Route("/resources/{name}/results", h.results, methods=get),
        Route("/resources/{name}/diff", h.diff, methods=get),
        Route("/resources/{name}/files/{path:path}", h.image, methods=get),
        Route("/static/app.css", _static(STYLESHEET, "text/css"), methods=get),
        Route("/static/app.js", _static(SCRIPT, "text/javascript"), methods=get),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _html(error_page(404, "No such page.", sources.project), 404)

    async def cannot_read(request: Request, exc: Exception) -> Response:
        # A state that cannot be read, a results file that went away: one line, no traceback.
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        return _html(error_page(500, f"{message}{where}", sources.project), 500)

    return Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))],
        exception_handlers={404: not_found, OSError: cannot_read, ReconcilerError: cannot_read},
    )


def host_names(host: str) -> tuple[str, ...]:
    """The Host headers to answer when bound to `host`: loopback names, or any when the user
    chose to bind another interface."""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    return LOCAL_HOSTS if loopback else ("*",)
