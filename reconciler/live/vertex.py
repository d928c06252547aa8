"""VertexAdapter: Vertex AI batch prediction behind the same calls as the Developer API adapter.

apply and the planner do not know which service they talk to: this adapter answers the calls
`GeminiAdapter` answers (service.py names them) with the same `Live` values and the same
`ServiceError`s. What differs, inside this module:

- Inputs: Vertex has no Files API. `upload_file` stages a local file in Cloud Storage under
  `<staging>/inputs/<project>/<sha256>.<ext>`, content-addressed within the project (its
  token, as in tags.py): an object already there (same name, same size) is not uploaded
  again. The returned `LiveFile` is named by its gs:// URI, which the create call and media
  parts (`fileData.fileUri`) use as they use `files/...` names.
- Jobs: `batchPredictionJobs`, created with the identity tag in `displayName` and as labels
  (vertex_convert.py), writing to `<staging>/outputs/<project>/<resource>`; the SDK's create
  is resent only when the answer proves no job was made, exactly as on the Developer API
  (adapter.py).
- Results: a job's `predictions.jsonl` is downloaded and each line rewritten as a Developer
  API result line (`key` + `response` or `error`; vertex_convert.rewrite_predictions), so
  collection is unchanged.
- BigQuery (vertex_bigquery.py): a `bq://` source table is passed to the create call as is
  (its metadata digested for `plan` through `remote_objects`); a `bq://` output is the job's
  own destination (`create_job(destination=...)`), and "downloading" it reads its rows back
  as result lines, which collection counts without copying them anywhere.
- Cloud Storage calls, their errors and staged objects as `LiveFile`s are vertex_storage.py's;
  the SDK client is built by vertex_client.py.
- No inline requests, no embeddings (the SDK's `create_embeddings` is Developer API only), no
  batch priority: validate refuses those manifests first (manifests/vertex_rules.py); the
  adapter refuses them too, as a `PermanentServiceError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar

import httpx2
from google import genai
from google.genai import types

from reconciler.clock import Clock
from reconciler.errors import (
    ConfigError,
    PermanentServiceError,
    ServiceError,
)
from reconciler.live import vertex_convert
from reconciler.live.boundary import (
    Boundary,
)
from reconciler.live.retry import Retrier
from reconciler.live.settings import AdapterSettings, Task
from reconciler.live.snapshot import InlineResult, Live, LiveFile, LiveJob, LiveModel
from reconciler.live.tags import parse_tag
from reconciler.live.transfer import DownloadFollower, Progress
from reconciler.live.vertex_bigquery import (
    BigQuery,
    BigQueryError,
    TableCheck,
    service_error,
    table_file,
    write_result_lines,
)
from reconciler.live.vertex_storage import ObjectFacts, Storage, live_file, measure, storage_error
from reconciler.live.vertex_target import VertexTarget
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.remote import Remote, RemoteObject

T = TypeVar("T")

_EXTENSIONS: Final = {"jsonl": "jsonl", "application/jsonl": "jsonl"}
_GENERATE: Final = "batchGenerateContent"


async def remote_objects(service: object, uris: Sequence[str]) -> dict[str, Remote | None]:
    """`source.gcs` objects and `source.bigquery` tables as the service sees them: only Vertex
    reads them (validate refuses them elsewhere, so another service finds none)."""
    if isinstance(service, VertexAdapter):
        return await service.remote_objects(uris)
    return dict.fromkeys(uris)


async def bigquery_checks(
    service: object, sources: Sequence[str], outputs: Sequence[str]
) -> list[TableCheck]:
    """`doctor`'s BigQuery checks: each source table readable, each output table's dataset
    there (and whether the table is), with the credentials and endpoint a run uses. Only
    Vertex reads BigQuery (validate refuses tables elsewhere), so another service has none."""
    if not isinstance(service, VertexAdapter):
        return []
    return await service.bigquery_checks(sources, outputs)


class VertexAdapter:
    """Vertex AI batch prediction and its Cloud Storage, as `Live` values (see the module)."""

    endpoint_kind: Final = "vertex"

    def __init__(
        self,
        client: genai.Client,
        target: VertexTarget,
        *,
        clock: Clock,
        settings: AdapterSettings | None = None,
        http: httpx2.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._aio = client.aio
        self._target = target
        self._http = http
        self._clock = clock
        self._settings = settings or AdapterSettings()
        self._boundary = Boundary(())
        self._retrier = Retrier(
            self._settings, clock, rng or random.Random(), self._boundary.redact
        )
        self._storage = Storage(target.storage_url, target.project)
        self._bigquery = BigQuery(
            target.bigquery_url, beside_emulator=target.base_url is not None or target.embedded
        )

    # -- plumbing ------------------------------------------------------------------------------

    async def _idempotent(self, call: str, send: Callable[[], Awaitable[T]]) -> T:
        return await self._retrier.idempotent(self._boundary, call, send)

    async def _in_storage(self, call: str, work: Callable[[], T]) -> T:
        """A Cloud Storage or BigQuery call in a worker thread (the Cloud Storage client retries
        idempotent calls; a BigQuery failure surfaces as a Transient- or PermanentServiceError
        by its status)."""
        try:
            return await asyncio.to_thread(work)
        except (ConfigError, ServiceError):
            raise
        except BigQueryError as exc:
            raise service_error(exc, call) from exc
        except Exception as exc:  # google-cloud-storage and google-auth raise many types
            raise storage_error(exc, call) from exc

    def _staged(self, what: str) -> str:
        return f"gs://{self._target.bucket}/{self._target.prefix}{what}"

    # -- reading -------------------------------------------------------------------------------

    async def snapshot(self, *, include_files: bool) -> Live:
        """Reconciler's jobs (one filtered `batchPredictionJobs.list` walk). Files are never
        listed (`files_listed=False`): Vertex has no Files API, so no Files storage quota is
        counted against the staged objects, and a staged input is looked up by name when it
        may be reused (`get_file`)."""
        observed_at = self._clock.now()
        jobs = await self._list_jobs()
        return Live(
            observed_at=observed_at,
            jobs=dict(sorted(jobs.items())),
            files_listed=False,
            endpoint=self.endpoint_kind,
        )

    async def list_files(self) -> None:
        """None: Vertex has no Files API (see `snapshot`)."""
        return None

    async def _list_jobs(self) -> dict[str, LiveJob]:
        call = "batchPredictionJobs.list"

        async def walk() -> dict[str, LiveJob]:
            found: dict[str, LiveJob] = {}
            pager = await self._aio.batches.list(
                config=types.ListBatchJobsConfig(
                    page_size=self._settings.page_size, filter=vertex_convert.MANAGED_FILTER
                )
            )
            async for job in pager:
                live = vertex_convert.live_job(job, call)
                found[live.name] = live
            return found

        return await self._idempotent(call, walk)

    async def get_job(self, name: str) -> LiveJob | None:
        """The job now, or None when Vertex does not know it (404, or a job recorded on
        another endpoint, which Vertex cannot see)."""
        call = "batchPredictionJobs.get"
        if not _is_vertex_job(name):
            return None
        try:
            job = await self._idempotent(call, lambda: self._aio.batches.get(name=name))
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return None
            raise
        return vertex_convert.live_job(job, call)

    async def get_file(self, name: str) -> LiveFile | None:
        """The gs:// object `name` (a staged input or a job's predictions) or the `bq://` table
        a job wrote, or None (also for a `files/...` name recorded on the Developer API, which
        Vertex cannot see)."""
        if is_bigquery(name):
            table = await self._in_storage(
                "bigquery.tables.get", lambda: self._bigquery.table(name)
            )
            return None if table is None else table_file(table)
        if not name.startswith("gs://"):
            return None
        facts = await self._in_storage("storage.get", lambda: self._storage.facts(name))
        return None if facts is None else live_file(facts)

    async def remote_objects(self, uris: Sequence[str]) -> dict[str, Remote | None]:
        """The Cloud Storage facts of each `source.gcs` object and the BigQuery metadata of
        each `source.bigquery` table (None: it does not exist)."""

        def look() -> dict[str, Remote | None]:
            found: dict[str, Remote | None] = {}
            for uri in uris:
                if is_bigquery(uri):
                    found[uri] = self._bigquery.table(uri)
                    continue
                facts = self._storage.facts(uri)
                found[uri] = (
                    None
                    if facts is None
                    else RemoteObject(uri, facts.size, facts.generation, facts.crc32c, facts.md5)
                )
            return found

        return await self._in_storage("storage.get", look)

    async def bigquery_checks(
        self, sources: Sequence[str], outputs: Sequence[str]
    ) -> list[TableCheck]:
        """See the module-level `bigquery_checks`.

        Raises:
            ConfigError: an emulated Vertex without a BigQuery emulator.
        """

        def look() -> list[TableCheck]:
            found = [self._bigquery.check_source(uri) for uri in sources]
            return found + [self._bigquery.check_output(uri) for uri in outputs]

        return await asyncio.to_thread(look)

    async def inline_results(self, job_name: str) -> list[InlineResult]:
        """Vertex jobs have no inline output."""
        return []

    async def get_model(self, name: str) -> LiveModel | None:
        """Vertex's publisher-model API does not list batch methods; the model is checked by
        the service when the job is created (404 NOT_FOUND, a permanent failure)."""
        return LiveModel(
            name=f"models/{vertex_convert.model_id(name)}", supported_methods=(_GENERATE,)
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
        """Stage `path` under `<staging>/inputs/<owner>/<sha256>.<ext>` (the shape
        `wire.is_staged_input` tells from a `source.gcs` object); an object already
        there with the same size is the same content and is not uploaded again. `progress` is
        not told anything: Cloud Storage uploads go through its client in one call.

        The owner's folder keeps projects sharing a staging prefix apart: each project's
        cleanup deletes the inputs its own collected jobs read, which must never be an object
        another project's running job reads or is about to read."""
        digest, size = await asyncio.to_thread(measure, path)
        extension = _EXTENSIONS.get(mime_type) or path.suffix.lstrip(".") or "bin"
        folder = f"inputs/{owner}" if owner else "inputs"
        uri = self._staged(f"{folder}/{digest}.{extension}")
        content_type = "application/jsonl" if extension == "jsonl" else mime_type

        def stage() -> ObjectFacts:
            found = self._storage.facts(uri)
            if found is not None and found.size == size:
                return found
            return self._storage.upload(uri, path, content_type)

        facts = await self._in_storage("storage.upload", stage)
        return live_file(facts)

    async def download_file(
        self,
        name: str,
        dest: Path,
        *,
        follower: DownloadFollower | None = None,
        progress: Progress | None = None,
    ) -> tuple[str, int]:
        """Download the predictions at gs:// `name` (or the rows of the `bq://` table `name`)
        into `dest` as Developer API result lines; return (sha256 hex, bytes) of what was
        written. `follower` is not used (Vertex results are rewritten line by line, so nothing
        can hash them while they arrive)."""
        if is_bigquery(name):
            try:
                return await self._in_storage(
                    "bigquery.tabledata.list",
                    lambda: write_result_lines(self._bigquery.rows(name), dest),
                )
            except ServiceError as exc:
                if exc.status_code == 404:
                    raise PermanentServiceError(
                        f"{name} does not exist", call="bigquery.tabledata.list", status_code=404
                    ) from exc
                raise
        if not name.startswith("gs://"):
            raise PermanentServiceError(
                f"{name} is not in Cloud Storage", call="storage.download", status_code=404
            )
        raw = dest.with_name(dest.name + ".vertex")
        try:
            await self._in_storage("storage.download", lambda: self._storage.download(name, raw))
            return await asyncio.to_thread(vertex_convert.rewrite_predictions, raw, dest)
        except ServiceError as exc:
            if exc.status_code == 404:
                raise PermanentServiceError(
                    f"{name} does not exist", call="storage.download", status_code=404
                ) from exc
            raise
        finally:
            raw.unlink(missing_ok=True)

    async def delete_file(self, name: str) -> None:
        """Delete a staged object; one already gone counts as deleted (as does a Developer API
        file recorded before the project moved to Vertex)."""
        if not name.startswith("gs://"):
            return
        if not name.startswith(self._staged("")):
            # A `source.gcs` object is the user's: reconciler deletes only what it staged.
            raise PermanentServiceError(
                f"left in place: reconciler deletes only objects under {self._staged('')}",
                call="storage.delete",
                status_code=403,
            )
        await self._in_storage("storage.delete", lambda: self._storage.delete(name))

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
        """Create one batch prediction job reading the staged (or referenced) gs:// `file_name`
        or the `bq://` table `file_name`, writing to `<staging>/outputs/<resource>` or, when
        `destination` names one, to that `bq://` table.

        Raises:
            PermanentServiceError: inline requests, embeddings, batch fields, or a 4xx answer.
            TransientServiceError: busy or unreachable; `ambiguous` when the job may exist.
        """
        call = "batchPredictionJobs.create"
        if task != "generate" or inline_requests is not None or file_name is None:
            raise PermanentServiceError(
                "Vertex AI batch prediction takes only generate jobs from a gs:// JSONL file",
                call=call,
            )
        if batch_fields:
            raise PermanentServiceError(
                f"Vertex AI batch jobs have no {', '.join(sorted(batch_fields))}", call=call
            )
        tag = parse_tag(display_name)
        # Per project and resource, as the staged inputs are per project (upload_file).
        folder = "jobs" if tag is None else f"{tag.project or 'shared'}/{tag.resource}"
        once = types.HttpOptions(
            retry_options=types.HttpRetryOptions(attempts=1),
            extra_body={"labels": vertex_convert.labels_for(display_name)},
        )
        if destination is not None and not is_bigquery(destination):
            raise PermanentServiceError(
                f"{destination}: a Vertex job's own destination is a bq:// table", call=call
            )
        config = types.CreateBatchJobConfig(
            display_name=display_name,
            # The SDK maps `bq://` to bigqueryDestination and gs:// to gcsDestination.
            dest=destination or self._staged(f"outputs/{folder}"),
            http_options=once,
        )
        job = await self._retrier.create(
            self._boundary,
            call,
            lambda: self._aio.batches.create(
                model=vertex_convert.model_id(model), src=file_name, config=config
            ),
        )
        return vertex_convert.live_job(job, call)

    async def set_job_priority(self, name: str, task: Task, priority: int) -> bool:
        """Vertex has no call that changes a batch job's priority (and `validate` refuses
        `priority` for Vertex manifests), so this always refuses.

        Raises:
            PermanentServiceError: always.
        """
        raise PermanentServiceError(
            f"Vertex AI cannot change the priority of {name}: it has no batch update call",
            call="batchPredictionJobs.update",
            status_code=400,
        )

    async def cancel_job(self, name: str) -> None:
        """Cancel a job; one that already ended or is gone is not an error, nor is one recorded
        on another endpoint (out of Vertex's reach: it is left as it is)."""
        if not _is_vertex_job(name):
            return
        try:
            await self._idempotent(
                "batchPredictionJobs.cancel", lambda: self._aio.batches.cancel(name=name)
            )
        except PermanentServiceError as exc:
            if exc.status_code == 404:
                return
            job = await self.get_job(name)
            if job is None or job.state.is_terminal:
                return
            raise

    async def delete_job(self, name: str) -> None:
        if not _is_vertex_job(name):
            return
        try:
            await self._idempotent(
                "batchPredictionJobs.delete", lambda: self._aio.batches.delete(name=name)
            )
        except PermanentServiceError as exc:
            if exc.status_code != 404:
                raise

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._aio.aclose()
        with contextlib.suppress(Exception):
            self._client.close()
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.aclose()


def _is_vertex_job(name: str) -> bool:
    return "/batchPredictionJobs/" in name
