"""The reads a plan makes of the Developer API, without the SDK: `RestReader`.

`plan` (and apply's, status's and the web view's plan) reads the service three ways: one walk of
`batches.list`, `files.list` when the plan may upload, and `models.get` per model. Those are
sent here as the SDK's requests (rest_route.py) over the adapter's HTTP client, read as the
SDK reads them (rest_values.py), and retried and mapped exactly as the adapter's calls
(retry.py, boundary.py: the same `ServiceError`s and messages). The SDK is neither imported nor
a client built: that was a tenth of a no-op plan at 10,000 resources (benchmarks/RESULTS.md,
Session 8). The adapter walks its listings with the same code (`walk_jobs`, `walk_files`).
Opening one for a project: reading.py.

It must not import google.genai (tests/unit/cli/test_lazy_commands.py runs `plan` and checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import urlencode

import httpx2

from reconciler.clock import Clock
from reconciler.errors import PermanentServiceError, ServiceError
from reconciler.live.boundary import Boundary, malformed
from reconciler.live.rest_route import Route, call_json, model_path
from reconciler.live.rest_values import file_from_rest, job_from_rest, model_from_rest
from reconciler.live.retry import Retrier
from reconciler.live.settings import AdapterSettings
from reconciler.live.snapshot import Live, LiveFile, LiveJob, LiveModel

T = TypeVar("T")

JobsCall: Final = "batches.list"
FilesCall: Final = "files.list"

GetPage = Callable[[str], Awaitable[dict[str, Any]]]
"""Sends one GET of a path below the API version and answers its JSON object."""


class ServiceReader(Protocol):
    """The reads a plan makes of a batch service (`BatchService` has them all)."""

    @property
    def endpoint_kind(self) -> str: ...

    async def snapshot(self, *, include_files: bool) -> Live: ...

    async def list_files(self) -> Mapping[str, LiveFile] | None:
        """Every file (`files.list`), or None where the service has no Files API (Vertex): what
        `snapshot(include_files=True)` adds to the jobs, for a caller that listed them first."""
        ...

    async def get_file(self, name: str) -> LiveFile | None: ...

    async def get_model(self, name: str) -> LiveModel | None: ...

    async def aclose(self) -> None: ...


async def walk_jobs(get: GetPage, page_size: int) -> dict[str, LiveJob]:
    """Every page of `batches.list` as the SDK requests them (`pageSize`, then each
    `pageToken`), each job read by `job_from_rest` instead of the SDK's models."""
    jobs: dict[str, LiveJob] = {}
    async for operation in _items(get, "batches", "operations", page_size, JobsCall):
        job = job_from_rest(operation, JobsCall)
        jobs[job.name] = job
    return jobs


async def walk_files(get: GetPage, page_size: int) -> dict[str, LiveFile]:
    """Every page of `files.list` as the SDK requests them, each file read by
    `file_from_rest`."""
    files: dict[str, LiveFile] = {}
    async for body in _items(get, "files", "files", page_size, FilesCall):
        file = file_from_rest(body, FilesCall)
        files[file.name] = file
    return files


async def _items(
    get: GetPage, path: str, field: str, page_size: int, call: str
) -> AsyncIterator[object]:
    query: dict[str, str | int] = {"pageSize": page_size}
    while True:
        answer = await get(f"{path}?{urlencode(query)}")
        items = answer.get(field) or []
        if not isinstance(items, list):
            malformed(call, f"`{field}` is not a list")
        for item in items:
            yield item
        token = answer.get("nextPageToken")
        if token is None or token == "":
            return
        if not isinstance(token, str):
            # Read as the last page, the jobs after it would look gone from the service.
            malformed(call, "`nextPageToken` is not a string")
        query["pageToken"] = token


class RestReader:
    """The plan's reads of a Developer API endpoint over `http`, which it owns (`aclose`).

    Every call raises only `ServiceError`s, as `GeminiAdapter`'s: the same retries (a walk
    that fails on any page starts again) and the same messages.
    """

    endpoint_kind: Final = "gemini"

    def __init__(
        self,
        route: Route,
        http: httpx2.AsyncClient,
        *,
        clock: Clock,
        settings: AdapterSettings | None = None,
        secrets: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        self._route = route
        self._http = http
        self._clock = clock
        self._settings = settings or AdapterSettings()
        self._boundary = Boundary(secrets)
        self._retrier = Retrier(
            self._settings, clock, rng or random.Random(), self._boundary.redact
        )

    async def _get(self, path: str) -> dict[str, Any]:
        return await call_json(self._http, self._route("get", path), "get", None)

    async def _idempotent(self, call: str, send: Callable[[], Awaitable[T]]) -> T:
        return await self._retrier.idempotent(self._boundary, call, send)

    async def snapshot(self, *, include_files: bool) -> Live:
        """Every batch job and, when asked, every file; `observed_at` is taken before the
        first call (as `GeminiAdapter.snapshot`)."""
        observed_at = self._clock.now()
        size = self._settings.page_size
        jobs_walk = self._idempotent(JobsCall, lambda: walk_jobs(self._get, size))
        if include_files:
            jobs, files = await _both(jobs_walk, self.list_files())
        else:
            jobs, files = await jobs_walk, None
        return Live(
            observed_at=observed_at,
            jobs=dict(sorted(jobs.items())),
            files=dict(sorted((files or {}).items())),
            files_listed=files is not None,
            endpoint=self.endpoint_kind,
        )

    async def list_files(self) -> dict[str, LiveFile]:
        size = self._settings.page_size
        return await self._idempotent(FilesCall, lambda: walk_files(self._get, size))

    async def get_file(self, name: str) -> LiveFile | None:
        """The file now, or None when the service does not have it (404, or the 403 it sends
        for files that expired -- protocol §4)."""
        call = "files.get"
        path = f"files/{name.removeprefix('files/')}"
        try:
            body = await self._idempotent(call, lambda: self._get(path))
        except PermanentServiceError as exc:
            if exc.status_code in (403, 404):
                return None
            raise
        return file_from_rest(body, call)

    async def get_model(self, name: str) -> LiveModel | None:
        """The model as the service lists it, or None when it does not know it (404)."""
        call = "models.get"
        try:
            body = await self._idempotent(call, lambda: self._get(model_path(name)))
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return None
            raise
        return model_from_rest(body, name, call)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._http.aclose()


async def _both(
    first: Awaitable[dict[str, LiveJob]], second: Awaitable[dict[str, LiveFile]]
) -> tuple[dict[str, LiveJob], dict[str, LiveFile]]:
    """Both walks side by side, as `GeminiAdapter.snapshot` runs them: when the second fails,
    the first is cancelled and awaited (no task left pending, no failure unretrieved) and the
    second's failure raised as it is."""
    task = asyncio.ensure_future(first)
    try:
        files = await second
        jobs = await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ServiceError):
                await task
    return jobs, files
