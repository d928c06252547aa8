"""Vertex AI `batchPredictionJobs` routes, for Gemini models: create, get, list, cancel, delete.

The paths google-genai calls with `vertexai=True` (`batches.py`, the `_*_to_vertex`
converters), under `/v1` and `/v1beta1`:

    POST   /{v}/projects/{p}/locations/{l}/batchPredictionJobs          create
    GET    /{v}/projects/{p}/locations/{l}/batchPredictionJobs          list (filter, pages)
    GET    /{v}/projects/{p}/locations/{l}/batchPredictionJobs/{id}     get
    POST   /{v}/projects/{p}/locations/{l}/batchPredictionJobs/{id}:cancel
    DELETE /{v}/projects/{p}/locations/{l}/batchPredictionJobs/{id}     a done Operation

Vertex authenticates with OAuth tokens, not API keys: the routes accept anonymous callers (the
SDK with `AnonymousCredentials`). Sources are gs:// JSONL files (`inputConfig.gcsSource`) or a
BigQuery table (`inputConfig.bigquerySource`), destinations a gs:// prefix
(`outputConfig.gcsDestination`) or a BigQuery table (`outputConfig.bigqueryDestination`,
reported back as `outputInfo.bigqueryOutputDataset` + `bigqueryOutputTable`). Errors have
Google's shape (wire.error).
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.emulator import catalogue, jobs, vertex_bigquery, vertex_storage, wire
from reconciler.emulator.plumbing import EmulatorState, Reject, guard, json_body
from reconciler.emulator.protojson import Field, Message, Schema
from reconciler.emulator.settings import EmulatorSettings
from reconciler.emulator.store import new_id
from reconciler.emulator.vertex_jobs import Services, settle
from reconciler.emulator.vertex_store import (
    MAX_REQUESTS_KEY,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    VertexJob,
    VertexStore,
    bigquery_input,
    bigquery_output,
    gcs_inputs,
    gcs_output_prefix,
)

VERSIONS = frozenset({"v1", "v1beta1"})
"""Vertex's REST versions; the SDK calls v1beta1 unless told otherwise."""
_CREATE_FIELDS = frozenset(
    {"displayName", "model", "inputConfig", "outputConfig", "labels", "modelParameters"}
)
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_CLAUSE = re.compile(
    r"^\s*(?P<field>labels\.[a-z0-9_-]+|state|display_name|displayName)\s*"
    r'(?P<op>=|:)\s*(?P<value>"[^"]*"|\S+)\s*$'
)
_MODEL = re.compile(r"^(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models/(?P<id>[^/]+)$")


def _parent(request: Request) -> str:
    found = str(request.path_params["version"])
    if found not in VERSIONS:
        raise Reject(wire.error(404, f"Unknown API version {found!r}"))
    project = request.path_params["project"]
    location = request.path_params["location"]
    return f"projects/{project}/locations/{location}"


_STRING = Field("string")
_SHAPE = Schema(
    "google.cloud.aiplatform",
    {
        "BatchPredictionJob": Message(
            "BatchPredictionJob",
            {
                "display_name": _STRING,
                "model": _STRING,
                "input_config": Field("message", "BatchPredictionJob.InputConfig"),
                "output_config": Field("message", "BatchPredictionJob.OutputConfig"),
                "labels": Field("struct"),
                "model_parameters": Field("value"),
            },
        ),
        "BatchPredictionJob.InputConfig": Message(
            "BatchPredictionJob.InputConfig",
            {
                "instances_format": _STRING,
                "gcs_source": Field("message", "GcsSource"),
                "bigquery_source": Field("message", "BigQuerySource"),
            },
        ),
        "BatchPredictionJob.OutputConfig": Message(
            "BatchPredictionJob.OutputConfig",
            {
                "predictions_format": _STRING,
                "gcs_destination": Field("message", "GcsDestination"),
                "bigquery_destination": Field("message", "BigQueryDestination"),
            },
        ),
        "GcsSource": Message("GcsSource", {"uris": Field("string", repeated=True)}),
        "BigQuerySource": Message("BigQuerySource", {"input_uri": _STRING}),
        "GcsDestination": Message("GcsDestination", {"output_uri_prefix": _STRING}),
        "BigQueryDestination": Message("BigQueryDestination", {"output_uri": _STRING}),
    },
    {},
)
"""The parts of a BatchPredictionJob a create reads, as its proto-JSON parser types them: a
value of the wrong JSON type is Vertex's 400 before anything reads it (names this emulator does
not model pass, as they did)."""


def _bad(field: str, message: str) -> Reject:
    return Reject(wire.bad_request([(field, message)]))


def _check_labels(labels: Any) -> dict[str, str]:
    """Vertex's label rules: at most 64, lowercase keys and values of at most 63 characters."""
    if labels is None:
        return {}
    if not isinstance(labels, dict) or len(labels) > 64:
        raise _bad("labels", "labels must be a map of at most 64 entries")
    for key, value in labels.items():
        if (
            not _LABEL.match(str(key))
            or not isinstance(value, str)
            or not _LABEL_VALUE.match(value)
        ):
            raise _bad(
                f"labels.{key}",
                "label keys and values must be lowercase letters, digits, '_' or '-' "
                "(keys start with a letter), at most 63 characters",
            )
    return {str(k): str(v) for k, v in labels.items()}


def _check_create(body: Any, known_model: Any) -> tuple[str, dict[str, Any]]:
    """The model id and the stored parts of a valid create request."""
    if not isinstance(body, dict):
        raise _bad("", "the request body must be a BatchPredictionJob object")
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise Reject(
            wire.bad_request(
                [
                    (name, f'Invalid JSON payload received. Unknown name "{name}"')
                    for name in unknown
                ]
            )
        )
    if violations := _SHAPE.check(body, "BatchPredictionJob", "v1", accept_unknown=True):
        raise Reject(wire.bad_request(violations))
    match = _MODEL.match(str(body.get("model") or ""))
    if match is None:
        raise _bad("model", "model must be publishers/google/models/{model}")
    model_id = match.group("id")
    if not known_model(model_id):
        raise Reject(
            wire.error(404, f"Publisher Model `publishers/google/models/{model_id}` not found.")
        )
    if not isinstance(body.get("displayName"), str) or not body["displayName"]:
        raise _bad("displayName", "displayName is required")
    input_config = body.get("inputConfig")
    output_config = body.get("outputConfig")
    if not isinstance(input_config, dict) or not isinstance(output_config, dict):
        raise _bad("inputConfig", "inputConfig and outputConfig are required")
    return model_id, {
        "inputConfig": _checked_input(body),
        "outputConfig": _checked_output(body),
        "labels": _check_labels(body.get("labels")),
    }


def _checked_table(field: str, uri: str) -> str:
    try:
        vertex_bigquery.split_table(uri)
    except ValueError as exc:
        raise _bad(field, str(exc)) from None
    return uri


def _checked_input(body: dict[str, Any]) -> dict[str, Any]:
    """The stored inputConfig: one gs:// JSONL source or one BigQuery table."""
    table = bigquery_input(body)
    uris = gcs_inputs(body)
    if table is not None and uris:
        raise _bad("inputConfig", "set one of inputConfig.gcsSource and .bigquerySource")
    if table is not None:
        uri = _checked_table("inputConfig.bigquerySource.inputUri", table)
        return {"instancesFormat": "bigquery", "bigquerySource": {"inputUri": uri}}
    if not uris:
        raise _bad("inputConfig.gcsSource.uris", "inputConfig.gcsSource.uris is required")
    for uri in uris:
        try:
            vertex_storage.split_uri(uri)
        except ValueError as exc:
            raise _bad("inputConfig.gcsSource.uris", str(exc)) from None
    return {"instancesFormat": "jsonl", "gcsSource": {"uris": uris}}


def _checked_output(body: dict[str, Any]) -> dict[str, Any]:
    """The stored outputConfig: one gs:// prefix or one BigQuery table."""
    table = bigquery_output(body)
    prefix = gcs_output_prefix(body)
    if table is not None and prefix is not None:
        raise _bad(
            "outputConfig", "set one of outputConfig.gcsDestination and .bigqueryDestination"
        )
    if table is not None:
        uri = _checked_table("outputConfig.bigqueryDestination.outputUri", table)
        return {"predictionsFormat": "bigquery", "bigqueryDestination": {"outputUri": uri}}
    if prefix is None:
        raise _bad(
            "outputConfig.gcsDestination.outputUriPrefix",
            "outputConfig.gcsDestination.outputUriPrefix is required",
        )
    return {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": prefix}}


def _check_limits(stored: dict[str, Any], settings: EmulatorSettings, services: Services) -> None:
    """What Vertex refuses at create that only the storage knows: a Cloud Storage input past
    `vertex_max_input_bytes`, and a BigQuery destination whose dataset is missing or whose
    table exists ("the Dataset must exist and table must not exist"). Skipped for a service
    the emulator was not given (the job then fails when it runs, as before)."""
    for uri in gcs_inputs(stored):
        if services.storage is None:
            break
        try:
            size = int(vertex_storage.object_metadata(services.storage, uri).get("size") or 0)
        except vertex_storage.StorageError:
            continue  # a missing input fails the job when it runs
        if size > settings.vertex_max_input_bytes:
            raise _bad(
                "inputConfig.gcsSource.uris",
                f"The input file {uri} is {size:,} bytes; a batch prediction job's input "
                f"file may be at most {settings.vertex_max_input_bytes:,} bytes.",
            )
    table = bigquery_output(stored)
    if table is None or services.bigquery is None:
        return
    field = "outputConfig.bigqueryDestination.outputUri"
    try:
        if not vertex_bigquery.dataset_exists(services.bigquery, table):
            raise _bad(field, f"The dataset of {table} does not exist.")
        if vertex_bigquery.table_exists(services.bigquery, table):
            raise _bad(
                field,
                f"The table {table} already exists: a batch prediction job writes to a new "
                "table, and the dataset must exist while the table must not.",
            )
    except vertex_bigquery.BigQueryError:
        return  # BigQuery unreachable: the job fails when it runs


def job_json(job: VertexJob, now: float) -> dict[str, Any]:
    """The BatchPredictionJob resource as Vertex writes it."""
    state, end = job.phase(now)
    body: dict[str, Any] = {
        "name": job.name,
        "displayName": job.display_name,
        "model": job.model,
        "inputConfig": job.body["inputConfig"],
        "outputConfig": job.body["outputConfig"],
        "state": state,
        "createTime": wire.timestamp(job.create_time),
        "updateTime": wire.timestamp(end if end is not None else now),
    }
    if job.body.get("labels"):
        body["labels"] = job.body["labels"]
    if state != PENDING:
        body["startTime"] = wire.timestamp(job.create_time + job.pending_seconds)
    if state in TERMINAL and end is not None:
        body["endTime"] = wire.timestamp(end)
    if state == SUCCEEDED and job.output_dir is not None:
        if job.output_dir.startswith("bq://"):
            dataset, _, table = job.output_dir.rpartition(".")
            body["outputInfo"] = {"bigqueryOutputDataset": dataset, "bigqueryOutputTable": table}
        else:
            body["outputInfo"] = {"gcsOutputDirectory": job.output_dir}
    if job.error:
        body["error"] = {"code": 13, "message": job.error}
    if state in (RUNNING, SUCCEEDED) or job.state is not None:
        # int64 as strings, zero counters omitted (proto3 JSON).
        stats = {
            "successfulCount": job.success_count,
            "failedCount": job.failed_count,
        }
        body["completionStats"] = {k: str(v) for k, v in stats.items() if v}
    return body


def _matches(job: VertexJob, state: str, clauses: list[tuple[str, str, str]]) -> bool:
    for field, op, value in clauses:
        if field.startswith("labels."):
            label = job.body.get("labels", {}).get(field.removeprefix("labels."))
            if op == ":" and value == "*":
                if label is None:
                    return False
            elif label != value:
                return False
        elif field == "state":
            if state != value:
                return False
        elif job.display_name != value:
            return False
    return True


def parse_filter(text: str) -> list[tuple[str, str, str]]:
    """The subset of AIP-160 this emulator answers: clauses joined by AND, each
    `labels.k=v`, `labels.k:*`, `state=JOB_STATE_...` or `display_name="..."`.

    Raises:
        Reject: any other filter (400, as Vertex answers a filter it cannot parse).
    """
    clauses: list[tuple[str, str, str]] = []
    if not text.strip():
        return clauses
    for part in re.split(r"\s+AND\s+", text.strip()):
        match = _CLAUSE.match(part)
        if match is None:
            raise _bad("filter", f"Unsupported filter clause {part!r}")
        value = match.group("value").strip('"')
        clauses.append((match.group("field"), match.group("op"), value))
    return clauses


class VertexRoutes:
    """The batchPredictionJobs handlers bound to one EmulatorState."""

    def __init__(self, state: EmulatorState) -> None:
        self.s = state
        self.store = VertexStore(state.store.data_dir)

    def _storage(self) -> Services:
        settings = self.s.settings.get()
        return Services(
            storage=vertex_storage.storage_url(settings.storage_url),
            bigquery=vertex_bigquery.bigquery_url(settings.bigquery_url),
        )

    async def collection(self, request: Request) -> Response:
        parent = _parent(request)
        if request.method == "POST":
            return await self._create(request, parent)
        return await self._list(request, parent)

    async def _create(self, request: Request, parent: str) -> Response:
        await guard(self.s, request, "vertex.batchPredictionJobs.create", auth=False)
        body = await json_body(request)
        settings = self.s.settings.get()

        def known(model_id: str) -> bool:
            return settings.accept_unknown_models or self.s.catalogue.supports(
                model_id, catalogue.GENERATE
            )

        model_id, stored = _check_create(body, known)
        if parent.endswith("/locations/global") and (
            bigquery_input(stored) or bigquery_output(stored)
        ):
            raise _bad(
                "inputConfig",
                "Batch prediction in location global does not support BigQuery tables as "
                "input or output.",
            )
        await run_in_threadpool(_check_limits, stored, settings, self._storage())
        stored[MAX_REQUESTS_KEY] = settings.vertex_max_requests
        now = self.s.clock()
        job = VertexJob(
            id=str(secrets.randbelow(9 * 10**18) + 10**18),  # Vertex ids are 19 digits
            parent=parent,
            display_name=str(body["displayName"]),
            model=f"publishers/google/models/{model_id}",
            body=stored,
            create_time=now,
            job_seconds=jobs.lifetime_seconds(settings),
            pending_seconds=jobs.pending_seconds(settings),
            forced_end=_vertex_end(self.s.settings.take_forced_end()),
            state=None,
            end_time=None,
            success_count=0,
            failed_count=0,
            output_dir=None,
            error=None,
            request_error_rate=settings.request_error_rate,
            fault_seed=self.s.faults.job_seed(),
        )
        await run_in_threadpool(self.store.insert, job)
        job = await run_in_threadpool(settle, self.store, job, now, self._storage())
        return JSONResponse(job_json(job, now))

    async def _list(self, request: Request, parent: str) -> Response:
        await guard(self.s, request, "vertex.batchPredictionJobs.list", auth=False)
        query = request.query_params
        clauses = parse_filter(query.get("filter", ""))
        try:
            size = int(query.get("pageSize") or 100)
            offset = (
                int(base64.urlsafe_b64decode(query["pageToken"])) if query.get("pageToken") else 0
            )
        except ValueError:
            raise _bad("pageToken", "Invalid pageSize or pageToken") from None
        size = min(max(size, 1), 1000)
        now = self.s.clock()
        storage = self._storage()

        def read() -> list[dict[str, Any]]:
            found = []
            for job in self.store.all(parent):
                job = settle(self.store, job, now, storage)
                if _matches(job, job.phase(now)[0], clauses):
                    found.append(job_json(job, now))
            return found

        items = await run_in_threadpool(read)
        page = items[offset : offset + size]
        answer: dict[str, Any] = {}
        if page:
            answer["batchPredictionJobs"] = page
        if offset + size < len(items):
            answer["nextPageToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return JSONResponse(answer)

    async def item(self, request: Request) -> Response:
        parent = _parent(request)
        ident, _, verb = str(request.path_params["job"]).partition(":")
        route = {
            ("POST", "cancel"): "cancel",
            ("GET", ""): "get",
            ("DELETE", ""): "delete",
        }.get((request.method, verb))
        await guard(self.s, request, f"vertex.batchPredictionJobs.{route}", auth=False)
        if route is None:
            return wire.error(404, f"Method {verb or request.method!r} not found.")
        now = self.s.clock()
        job = await run_in_threadpool(self.store.get, parent, ident)
        if job is None:
            return wire.error(
                404, f"The BatchPredictionJob does not exist: {parent}/batchPredictionJobs/{ident}"
            )
        job = await run_in_threadpool(settle, self.store, job, now, self._storage())
        state = job.phase(now)[0]
        if route == "get":
            return JSONResponse(job_json(job, now))
        if route == "cancel":
            if state in TERMINAL:
                return wire.error(
                    400,
                    f"The BatchPredictionJob {job.name} is in state {state} and cannot be cancelled.",
                    status="FAILED_PRECONDITION",
                )
            # Vertex passes through JOB_STATE_CANCELLING; here the cancel is immediate.
            await run_in_threadpool(self._cancel, job, now)
            return JSONResponse({})
        if state not in TERMINAL:
            return wire.error(
                400,
                f"The BatchPredictionJob {job.name} is in state {state}; cancel it before deleting.",
                status="FAILED_PRECONDITION",
            )
        await run_in_threadpool(self.store.delete, job)
        operation = f"{parent}/operations/{new_id(12)}"
        return JSONResponse(
            {
                "name": operation,
                "done": True,
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.aiplatform.v1beta1.DeleteOperationMetadata"
                },
                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
            }
        )

    def _cancel(self, job: VertexJob, now: float) -> None:
        with self.store.transaction(immediate=True) as db:
            current = self.store.get(job.parent, job.id, db)
            if current is not None and current.state is None:
                self.store.end(current, "JOB_STATE_CANCELLED", now, db)


def _vertex_end(forced: str | None) -> str | None:
    """`fail_next_jobs` and `expire_next_jobs` both end a Vertex job FAILED (Vertex has no
    EXPIRED state: a job that runs out of time fails)."""
    return None if forced is None else "JOB_STATE_FAILED"
