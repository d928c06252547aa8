"""GeminiAdapter: Files and Batches calls through the SDK's async client, returning Live values.

Every call goes through the real SDK's async client (`client.aio`), so the emulator and Google
see the same requests (DESIGN §8); the two byte transfers stream their bodies (transfer.py).
Everything leaving this module is the tool's own type (snapshot.py) and every failure is a
`ServiceError` (boundary.py).

Retries (gemini-batch-protocol.md §4: the SDK retries nothing by default):

- Idempotent JSON calls (list, get, delete, cancel): retried here (`_idempotent`) on every
  transient failure -- 408/429/5xx, and dropped connections and protocol errors, which the
  SDK's own `HttpRetryOptions` do not cover -- waiting on the injected clock, at least as long
  as the service's `RetryInfo` asks. The SDK client itself makes one attempt (client.py), so
  retries never multiply.
- Uploads and downloads: those options do not apply to the upload request or the streamed
  download (§2.1), so a loop here restarts the whole transfer on transient failures; an
  upload first tries to resume its session from the offset the service reports.
- `create_job` is NOT idempotent at the service (DESIGN §7): it is resent only when the
  service's answer proves nothing was created (429, 503, 408, or no connection made). Any other
  failure after the request may have been sent raises `TransientServiceError(ambiguous=True)`,
  and the caller adopts the job by its identity tag instead of creating it again.

Safe to call concurrently from many asyncio tasks: the adapter holds no per-call state, and the
HTTP client is a connection pool. Bounding concurrency is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import typing
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx2
import pydantic
from google import genai
from google.genai import types

from reconciler.clock import Clock
from reconciler.errors import PermanentServiceError, ServiceError
from reconciler.live import convert
from reconciler.live.batch_stats import StatsTap
from reconciler.live.boundary import Boundary
from reconciler.live.rest_reads import walk_jobs
from reconciler.live.rest_route import call_json
from reconciler.live.rest_values import job_from_rest
from reconciler.live.retry import Retrier
from reconciler.live.sdk_request import (
    generate_file_body,
    model_path,
    sdk_request,
    send_json,
)
from reconciler.live.settings import AdapterSettings, Task
from reconciler.live.snapshot import InlineResult, Live, LiveFile, LiveJob, LiveModel
from reconciler.live.transfer import DownloadFollower, Progress, Transfers

T = TypeVar("T")

_EXPERIMENTAL: Final = r"batches\.create_embeddings\(\) is experimental"


class _FirstStepQuiet(Awaitable[T]):
    """Awaits `coro` with the SDK's "experimental" warning silenced during its first step only.

    `batches.create_embeddings` is the only way to reach asyncBatchEmbedContent, and warns on
    every call, before its first await; the warning would reach users' terminals. A
    `catch_warnings()` block around the whole await would span the request, while other tasks
    run and may enter and leave their own blocks; since the block saves and restores the
    process's filter list, interleaved blocks can restore each other's filters. The first step
    runs synchronously, so no other code runs inside this block.
    """

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, None, T]:
        coro = self._coro
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_EXPERIMENTAL)
            try:
                pending = coro.send(None)
            except StopIteration as done:
                return typing.cast(T, done.value)
        while True:
            # Pass everything through, as `await coro` would: what the event loop sends, and
            # what it throws in (cancellation).
            try:
                sent = yield pending
            except BaseException as exc:
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return typing.cast(T, done.value)
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    return typing.cast(T, done.value)


class GeminiAdapter:
    """Files and Batches calls over a `genai.Client`; results are plain values (snapshot.py).

    Every method raises only `ServiceError`s: `TransientServiceError` (worth retrying later) or
    `PermanentServiceError` (the same call will fail again), each naming the SDK call.
    """

    endpoint_kind: Final = "gemini"
    """Recorded on every attempt it creates (the emulator speaks the Developer API too)."""

    def __init__(
        self,
        client: genai.Client,
        *,
        clock: Clock,
        settings: AdapterSettings | None = None,
        secrets: Sequence[str] = (),
        http: httpx2.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Wrap `client` (build it with `build_client` so it carries the retry options).

        Args:
            secrets: strings never to show in an error (the API key).
            http: the async HTTP client `client` was built with (`build_client(http=...)`);
                transfers stream over it, and `aclose` closes it. Without it, transfers use
                the SDK's public calls.
            rng: the source of retry jitter; a new unseeded generator when not given.
        """
        self._client = client
        self._aio = client.aio
        self._http = http
        self._clock = clock
        self._settings = settings or AdapterSettings()
        self._boundary = Boundary(secrets)
        self._retrier = Retrier(
            self._settings, clock, rng or random.Random(), self._boundary.redact
        )
        self._transfers = Transfers(client, http, self._retrier)
        self._stats = StatsTap()
        if http is not None:
            self._stats.install(http)

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
            endpoint=self.endpoint_kind,
        )

    async def _idempotent(self, call: str, send: Callable[[], Awaitable[T]]) -> T:
        return await self._retrier.idempotent(self._boundary, call, send)

    async def _list_jobs(self) -> dict[str, LiveJob]:
        """One walk of every page; a failure on any page restarts the walk (a page token may
        not outlive a broken connection, and the walk changes nothing)."""
        call = "batches.list"
        if self._http is not None and sdk_request(self._client, "get", "batches") is not None:
            size = self._settings.page_size
            return await self._idempotent(call, lambda: walk_jobs(self._get_json, size))

        async def walk() -> dict[str, LiveJob]:
            jobs: dict[str, LiveJob] = {}
            pager = await self._aio.batches.list(
                config=types.ListBatchJobsConfig(page_size=self._settings.page_size)
            )
            async for job in pager:
                live = convert.live_job(job, call, stats=self._stats.get(job.name or ""))
                jobs[live.name] = live
            return jobs

        return await self._idempotent(call, walk)

    async def _get_json(self, path: str) -> dict[str, Any]:
        return await self._send_json("get", path, None, "batches.list")

    async def _send_json(
        self, method: str, path: str, body: Mapping[str, object] | None, call: str
    ) -> dict[str, Any]:
        """One JSON call as the SDK sends it (its URL, headers and timeout: `sdk_request`) over
        the adapter's client; a failure answer raises `ErrorAnswer`, read as the SDK reads its
        `APIError`."""
        assert self._http is not None
        built = sdk_request(self._client, method, path)
        if built is None:
            raise PermanentServiceError("the SDK's request builder is not reachable", call=call)
        return await call_json(self._http, built, method, body)

    async def list_files(self) -> dict[str, LiveFile]:
        """Every file (`files.list`)."""
        return await self._list_files()

    async def _list_files(self) -> dict[str, LiveFile]:
        call = "files.list"

        async def walk() -> dict[str, LiveFile]:
            files: dict[str, LiveFile] = {}
            pager = await self._aio.files.list(
                config=types.ListFilesConfig(page_size=self._settings.page_size)
            )
            async for file in pager:
                live = convert.live_file(file, call)
                files[live.name] = live
            return files

        return await self._idempotent(call, walk)

    async def get_job(self, name: str) -> LiveJob | None:
        """The job now, or None when the service does not know it (404)."""
        call = "batches.get"
        try:
            job = await self._idempotent(call, lambda: self._aio.batches.get(name=name))
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return None
            raise
        return convert.live_job(job, call, stats=self._stats.get(job.name or name))

    async def get_file(self, name: str) -> LiveFile | None:
        """The file now, or None when the service does not have it (404, or the 403 it sometimes
        sends for files that expired -- protocol §4)."""
        call = "files.get"
        try:
            file = await self._idempotent(call, lambda: self._aio.files.get(name=name))
        except PermanentServiceError as exc:
            if exc.status_code in (403, 404):
                return None
            raise
        return convert.live_file(file, call)

    async def inline_results(self, job_name: str) -> list[InlineResult]:
        """The inline responses of a finished job, in the service's order.

        Keys come from each response's `metadata.key`; items without one (inline embeddings,
        or a service that drops metadata -- python-genai #1909) have `key=None` and only their
        `index`. Empty when the job has no inline output (yet).
        """
        job = await self._idempotent("batches.get", lambda: self._aio.batches.get(name=job_name))
        with self._boundary.mapping("batches.get"):
            return convert.inline_results(job.dest)

    async def get_model(self, name: str) -> LiveModel | None:
        """The model as the service lists it, or None when it does not know it (404)."""
        try:
            model = await self._idempotent("models.get", lambda: self._aio.models.get(model=name))
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return None
            raise
        return LiveModel(
            name=model.name or name,
            supported_methods=tuple(model.supported_actions or ()),
            input_token_limit=model.input_token_limit,
            output_token_limit=model.output_token_limit,
        )

    # -- files ---------------------------------------------------------------------------------

    async def upload_file(
        self,
        path: Path,
        *,
        display_name: str,
        mime_type: str,
        progress: Progress | None = None,
        owner: str | None = None,
    ) -> LiveFile:
        """Upload `path` (resumable protocol, the body streamed from disk; transfer.py);
        `progress` is told the bytes sent, a few times a second. `owner` is not needed: every
        upload is a new file of its own name."""
        call = "files.upload"
        with self._boundary.mapping(call):
            file = await self._transfers.upload(
                path, display_name=display_name, mime_type=mime_type, progress=progress
            )
        return convert.live_file(file, call)

    async def download_file(
        self,
        name: str,
        dest: Path,
        *,
        follower: DownloadFollower | None = None,
        progress: Progress | None = None,
    ) -> tuple[str, int]:
        """Stream file `name` into `dest` (created or truncated); return (sha256 hex, bytes).

        A transient failure restarts from byte 0 with a truncated file and a fresh hash.
        Callers wanting atomicity pass a temporary path and rename it after checking the digest.
        With a `follower`, it hashes the file as it is written (transfer.py); `progress` is
        told the bytes received, a few times a second.
        """
        with self._boundary.mapping("files.download"):
            return await self._transfers.download(name, dest, follower, progress)

    async def delete_file(self, name: str) -> None:
        """Delete a file; one already gone (404, or the 403 the service sometimes sends for
        missing files -- protocol §4) counts as deleted."""

        async def send() -> None:
            if not await self._transfers.delete(name):
                await self._aio.files.delete(name=name)

        try:
            await self._idempotent("files.delete", send)
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
        destination: str | None = None,
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
        if destination is not None:
            # `validate` refuses BigQuery outputs off Vertex; the Files API is the only place
            # the Developer API writes results.
            raise PermanentServiceError(
                "the Gemini Developer API writes batch results only to its Files API", call=call
            )
        if (file_name is None) == (inline_requests is None):
            raise PermanentServiceError(
                "give exactly one of file_name and inline_requests", call=call
            )
        # Per-call options replace the client's retry policy for this one request: the SDK would
        # otherwise resend after a read timeout, which may duplicate the job.
        # Batch fields the SDK's config has no slot for (e.g. `priority`) ride in `extra_body`,
        # which the SDK merges into the request's `batch` object.
        extra = {"batch": dict(batch_fields)} if batch_fields else None
        once = types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1), extra_body=extra)
        if (
            task == "generate"
            and file_name is not None
            and self._http is not None
            and sdk_request(self._client, "post", "batches") is not None
        ):
            # The one create sent without the SDK's call machinery (its request types, converters
            # and response models cost as much CPU as the request itself): the SDK's request,
            # written by sdk_request.py, on the adapter's client; other creates go through it.
            body = generate_file_body(display_name, file_name, batch_fields)

            def send() -> Coroutine[Any, Any, dict[str, Any]]:
                path = f"{model_path(model)}:batchGenerateContent"
                return self._send_json("post", path, body, call)

            answer = await self._retrier.create(self._boundary, call, send)
            with self._boundary.made_anyway(call):
                return job_from_rest(answer, call)
        try:
            source = (
                convert.generate_source(file_name, inline_requests)
                if task == "generate"
                else convert.embed_source(file_name, inline_requests)
            )
        except (ValueError, pydantic.ValidationError) as exc:
            raise PermanentServiceError(
                self._boundary.redact(f"invalid inline request: {exc}"), call=call
            ) from exc
        job = await self._retrier.create(
            self._boundary, call, lambda: self._send_create(model, source, display_name, once)
        )
        with self._boundary.made_anyway(call):
            return convert.live_job(job, call)

    async def _send_create(
        self,
        model: str,
        source: types.BatchJobSource | types.EmbeddingsBatchJobSource,
        display_name: str,
        once: types.HttpOptions,
    ) -> types.BatchJob:
        if isinstance(source, types.BatchJobSource):
            return await self._aio.batches.create(
                model=model,
                src=source,
                config=types.CreateBatchJobConfig(display_name=display_name, http_options=once),
            )
        return await _FirstStepQuiet(
            self._aio.batches.create_embeddings(
                model=model,
                src=source,
                config=types.CreateEmbeddingsBatchJobConfig(
                    display_name=display_name, http_options=once
                ),
            )
        )

    async def cancel_job(self, name: str) -> None:
        """Ask the service to cancel a job. Idempotent: cancelling a job that already ended or
        no longer exists is not an error (what the service answers then is undocumented --
        protocol §4 -- so a 4xx is checked against the job's state)."""
        try:
            await self._idempotent("batches.cancel", lambda: self._aio.batches.cancel(name=name))
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return
            job = await self.get_job(name)
            if job is None or job.state.is_terminal:
                return
            raise

    async def set_job_priority(self, name: str, task: Task, priority: int) -> bool:
        """Change a pending or running job's priority in place (the service's update call; the
        SDK has no method for it). Idempotent. False when the job had already ended or is gone:
        the service changes only unfinished jobs, and an ended one keeps its priority.

        Raises:
            PermanentServiceError: the endpoint has no update call (Vertex), or a 4xx answer
                for a job still in progress.
        """
        call = "batches.update"
        verb = "updateGenerateContentBatch" if task == "generate" else "updateEmbedContentBatch"
        path = f"{name}:{verb}?updateMask=priority"
        body: dict[str, object] = {"priority": str(priority)}  # int64: a string in proto-JSON
        try:
            answer = await self._idempotent(
                call, lambda: send_json(self._client, "patch", path, body)
            )
        except PermanentServiceError as exc:
            job = None if exc.status_code == 404 else await self.get_job(name)
            if job is None or job.state.is_terminal:
                return False
            raise
        if answer is None:
            raise PermanentServiceError(
                "this endpoint has no batch update call: priority cannot change in place",
                call=call,
            )
        return True

    async def delete_job(self, name: str) -> None:
        """Delete a job resource; one already gone (404) counts as deleted."""
        try:
            await self._idempotent("batches.delete", lambda: self._aio.batches.delete(name=name))
        except PermanentServiceError as exc:
            if exc.status_code != 404:
                raise

    async def aclose(self) -> None:
        """Close the SDK's connection pools and the HTTP client the adapter was given."""
        with contextlib.suppress(Exception):
            await self._aio.aclose()
        with contextlib.suppress(Exception):
            self._client.close()
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.aclose()
