"""Batches routes: create (generate, embed), get, list, cancel, delete, and the update calls.

Create refuses what the service refuses before any job exists: unknown body fields (400 with
BadRequest field violations), an unknown model or one without the method (404 NOT_FOUND, the
service's wording), a malformed input config, too many open jobs (429 with QuotaFailure). The
update routes (`:updateGenerateContentBatch`, `:updateEmbedContentBatch`) change `priority`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.emulator import catalogue, jobs, validation, wire
from reconciler.emulator.plumbing import (
    EmulatorState,
    Reject,
    guard,
    json_body,
    next_page_token,
    page_args,
    pick,
    version,
)
from reconciler.emulator.rows import BatchRow, PageToken
from reconciler.emulator.settings import EmulatorSettings
from reconciler.emulator.store import new_id

METHODS = {catalogue.GENERATE: "generate", catalogue.EMBED: "embed"}
_UPDATE_VERBS = {"updateGenerateContentBatch": "generate", "updateEmbedContentBatch": "embed"}
_UPDATABLE = frozenset({"priority"})
BYTES_PER_TOKEN = 4
"""The documented estimate of input tokens: bytes / 4, as reconciler's plan estimates them."""


def not_found_model(model_id: str, api_version: str, method: str) -> Response:
    return wire.error(
        404,
        f"models/{model_id} is not found for API version {api_version}, or is not supported for"
        f" {method}. Call ListModels to see the list of available models and their supported"
        " methods.",
    )


def parse_priority(value: Any, field: str) -> int:
    """An int64 priority from JSON (a number, or a string as proto-JSON writes int64)."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        priority = int(value)
    except ValueError:
        raise Reject(
            wire.bad_request(
                [(field, f"Invalid value at '{field}' (TYPE_INT64), {json.dumps(value)}")]
            )
        ) from None
    if not -(2**63) <= priority < 2**63:
        raise Reject(wire.bad_request([(field, f"Invalid value at '{field}': out of range")]))
    return priority


def _count_lines(path: Path) -> int:
    """Requests in a JSONL input (non-blank lines), counted by streaming the blob."""
    count = 0
    with path.open("rb") as blob:
        for line in blob:
            if line.strip():
                count += 1
    return count


def _as_line(item: dict[str, Any]) -> dict[str, Any]:
    """An inline request as the JSONL line of a file job: its key (from metadata) and request."""
    metadata = item.get("metadata")
    key = metadata.get("key") if isinstance(metadata, dict) else None
    return {"key": key, "request": item.get("request")} if key is not None else item


class BatchRoutes:
    """Batches handlers bound to one EmulatorState."""

    def __init__(self, state: EmulatorState) -> None:
        self.s = state

    def _check_model(self, model_id: str, method: str, api_version: str) -> None:
        if self.s.settings.get().accept_unknown_models:
            return
        if not self.s.catalogue.supports(model_id, method):
            raise Reject(not_found_model(model_id, api_version, method))

    async def create(self, request: Request, model_id: str, method: str) -> Response:
        api_version = version(request)
        kind = METHODS[method]
        await guard(self.s, request, f"batches.create_{kind}")
        body = await json_body(request)
        settings = self.s.settings.get()
        if violations := validation.create_batch(
            body, kind == "embed", api_version, accept_unknown=settings.accept_unknown_fields
        ):
            return wire.bad_request(violations)
        self._check_model(model_id, method, api_version)
        batch = pick(body, "batch")
        if not isinstance(batch, dict):
            return wire.bad_request([("batch", "batch is required")])
        config = pick(batch, "inputConfig", "input_config")
        if not isinstance(config, dict):
            return wire.bad_request([("batch.input_config", "batch.input_config is required")])
        file_name = pick(config, "fileName", "file_name")
        inline_items = pick(pick(config, "requests"), "requests")
        if (file_name is None) == (inline_items is None):
            return wire.bad_request(
                [
                    (
                        "batch.input_config",
                        "batch.input_config needs exactly one of file_name or requests",
                    )
                ]
            )
        raw_priority = pick(batch, "priority")
        priority = 0 if raw_priority is None else parse_priority(raw_priority, "batch.priority")
        now = self.s.clock()
        batch_id = new_id(36)
        # The store work of a create runs in two worker-thread hops (before and after the row
        # is made on the loop), not one per query: the hand-offs were most of a create's CPU.
        pinned = await run_in_threadpool(
            self._pin_input, now, settings, batch_id, file_name, inline_items
        )
        if isinstance(pinned, Response):
            return pinned
        display = pick(batch, "displayName", "display_name")
        row = self.new_row(batch_id, kind, model_id, display, pinned, priority, now)
        return await run_in_threadpool(self._insert_checked, row, now, settings)

    def _pin_input(
        self,
        now: float,
        settings: EmulatorSettings,
        batch_id: str,
        file_name: Any,
        inline_items: Any,
    ) -> Response | tuple[str | None, int]:
        """429 when the open jobs already reach the limit; else the job's input pinned (in a
        worker thread)."""
        cap = settings.max_concurrent_jobs
        active = self.s.store.open_batches_due_before(now)
        if active >= cap:
            return wire.error(
                429,
                f"Too many concurrent batch jobs ({active}); the limit is {cap}.",
                details=wire.quota_details(
                    "batch_concurrent_requests", settings.retry_delay_seconds, cap
                ),
            )
        return self._store_input(batch_id, file_name, inline_items)

    def _insert_checked(self, row: BatchRow, now: float, settings: EmulatorSettings) -> Response:
        """Store the new job unless a quota refuses it, and answer its Operation (in a worker
        thread)."""
        store = self.s.store
        row = dataclasses.replace(row, input_tokens=self._input_tokens(row))
        if refused := self._over_token_quota(row, now, counted=False):
            store.discard_input(row.id)
            return refused
        store.insert_batch(row)
        # Creates run concurrently: checked again with this job counted, so the cap is never
        # passed (two racing creates may both be refused, as a busy service may refuse them).
        cap = settings.max_concurrent_jobs
        if store.open_batches_due_before(now) > cap:
            store.delete_batch(row.id)
            return wire.error(
                429,
                f"Too many concurrent batch jobs; the limit is {cap}.",
                details=wire.quota_details(
                    "batch_concurrent_requests", settings.retry_delay_seconds, cap
                ),
            )
        if refused := self._over_token_quota(row, now, counted=True):
            store.delete_batch(row.id)
            return refused
        row = jobs.settle(store, row, now)  # job_seconds=0
        return JSONResponse(wire.operation_json(row, now, None))

    def _input_tokens(self, row: BatchRow) -> int:
        """The job's estimated input tokens: its input's bytes / 4, rounded up. An inline job's
        requests count as the `{"key", "request"}` lines a file job would send."""
        if not row.inline:
            size = self.s.store.input_snapshot(row.id).stat().st_size
        else:
            items = json.loads(self.s.store.inline_blob(row.id, "requests").read_text())
            size = len(json.dumps([_as_line(item) for item in items], separators=(",", ":")))
        return -(-size // BYTES_PER_TOKEN)

    def _over_token_quota(self, row: BatchRow, now: float, *, counted: bool) -> Response | None:
        """429 RESOURCE_EXHAUSTED when `row`'s tokens do not fit its model's enqueued-token
        quota beside the open jobs of that model (`counted`: `row` is already among them)."""
        limit = self.s.settings.get().max_enqueued_tokens
        if limit <= 0:
            return None
        open_tokens = self.s.store.open_tokens_due_before(now, row.model)
        total = open_tokens + (0 if counted else row.input_tokens)
        if total <= limit:
            return None
        return wire.error(
            429,
            f"Enqueued input tokens for {row.model} would reach {total}; the limit is {limit}"
            " enqueued tokens per model.",
            details=wire.quota_details(
                "batch_enqueued_tokens_per_model",
                self.s.settings.get().retry_delay_seconds,
                limit,
            ),
        )

    def new_row(
        self,
        batch_id: str,
        kind: str,
        model_id: str,
        display: Any,
        source: tuple[str | None, int],
        priority: int,
        now: float,
    ) -> BatchRow:
        """A new job's row: the current settings copied onto it (they never change later)."""
        settings = self.s.settings.get()
        file_id, count = source
        return BatchRow(
            id=batch_id,
            kind=kind,
            model=f"models/{model_id}",
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
            priority=priority,
            fault_seed=self.s.faults.job_seed(),
        )

    async def store_input(
        self, batch_id: str, file_name: Any, inline_items: Any
    ) -> tuple[str | None, int]:
        """Pin the job's input: the file's bytes, or the inline requests; (file id, count)."""
        return await run_in_threadpool(self._store_input, batch_id, file_name, inline_items)

    def _store_input(
        self, batch_id: str, file_name: Any, inline_items: Any
    ) -> tuple[str | None, int]:
        """`store_input` in a worker thread."""
        if file_name is not None:
            file_id = str(file_name).removeprefix("files/")
            if self.s.store.get_file(file_id) is None:
                raise Reject(wire.error(404, f"File {file_name} not found."))
            self.s.store.snapshot_input(file_id, batch_id)
            return file_id, _count_lines(self.s.store.input_snapshot(batch_id))
        if not isinstance(inline_items, list) or not inline_items:
            raise Reject(
                wire.bad_request(
                    [
                        (
                            "batch.input_config.requests.requests",
                            "batch.input_config.requests.requests must be a non-empty list",
                        )
                    ]
                )
            )
        items = [item if isinstance(item, dict) else {"request": item} for item in inline_items]
        self.s.store.inline_blob(batch_id, "requests").write_text(
            json.dumps(items, separators=(",", ":"))
        )
        return None, len(items)

    async def _settled(self, batch_id: str, now: float) -> BatchRow:
        # One `now` for settling and rendering: with two clock reads a job could be settled as
        # RUNNING and rendered as SUCCEEDED, without its output.
        return await run_in_threadpool(self._settled_now, batch_id, now)

    def _settled_now(self, batch_id: str, now: float) -> BatchRow:
        batch = self.s.store.get_batch(batch_id)
        if batch is None:
            raise Reject(wire.error(404, f"Batch batches/{batch_id} not found."))
        return jobs.settle(self.s.store, batch, now)

    async def item(self, request: Request) -> Response:
        version(request)
        batch_id, _, verb = str(request.path_params["name"]).partition(":")
        if request.method == "PATCH":
            await guard(self.s, request, "batches.update")
            return await self._update(request, batch_id, verb)
        if request.method == "POST":
            await guard(
                self.s, request, "batches.cancel" if verb == "cancel" else "batches.unknown"
            )
            if verb != "cancel":
                return wire.error(404, f"Method {verb!r} not found.")
            now = self.s.clock()
            batch = await self._settled(batch_id, now)
            # Cancel is instantly terminal (no CANCELLING state); on a finished job it is a no-op.
            if jobs.derive(batch, now).state not in jobs.TERMINAL:
                await run_in_threadpool(self.s.store.end_batch, batch_id, jobs.CANCELLED, now)
            return JSONResponse({})
        if request.method == "DELETE":
            await guard(self.s, request, "batches.delete")
            if not await run_in_threadpool(self.s.store.delete_batch, batch_id):
                return wire.error(404, f"Batch batches/{batch_id} not found.")
            return JSONResponse({})
        await guard(self.s, request, "batches.get")
        if verb:
            return wire.error(404, f"Method {verb!r} not found.")
        now = self.s.clock()
        batch, responses = await run_in_threadpool(self._settled_with_responses, batch_id, now)
        return JSONResponse(wire.operation_json(batch, now, responses))

    def _settled_with_responses(self, batch_id: str, now: float) -> tuple[BatchRow, Any]:
        batch = self._settled_now(batch_id, now)
        return batch, jobs.inline_responses(self.s.store, batch)

    async def _update(self, request: Request, batch_id: str, verb: str) -> Response:
        """`PATCH batches/{id}:update{Generate,Embed}ContentBatch?updateMask=priority`: the
        batch resource in, the batch resource (not an Operation) out."""
        kind = _UPDATE_VERBS.get(verb)
        if kind is None:
            return wire.error(404, f"Method {verb!r} not found.")
        body = await json_body(request)
        if violations := validation.update_batch(body, kind == "embed", version(request)):
            return wire.bad_request(violations)
        mask_text = request.query_params.get("updateMask") or request.query_params.get(
            "update_mask"
        )
        if mask_text:
            mask = {m.strip() for m in mask_text.split(",") if m.strip()}
        else:
            mask = {k for k in body if k != "name"} if isinstance(body, dict) else set()
        if refused := sorted(mask - _UPDATABLE):
            return wire.bad_request(
                [("update_mask", f"Field {name!r} cannot be updated.") for name in refused]
            )
        now = self.s.clock()
        batch = await self._settled(batch_id, now)
        if batch.kind != kind:
            return wire.error(
                400, f"batches/{batch_id} is not a {kind} batch; use the other update method."
            )
        if jobs.derive(batch, now).state in jobs.TERMINAL:
            return wire.error(
                400,
                f"batches/{batch_id} has ended; only a pending or running batch can be updated.",
                "FAILED_PRECONDITION",
            )
        if "priority" in mask:
            priority = parse_priority(pick(body, "priority") or 0, "priority")
            await run_in_threadpool(self.s.store.set_priority, batch_id, priority)
            batch = await self._settled(batch_id, now)
        return JSONResponse(wire.batch_json(batch, now))

    def _settled_page(
        self, size: int, token: PageToken | None, now: float
    ) -> tuple[list[BatchRow], PageToken | None]:
        """One page of jobs, each settled as of `now` (one worker-thread hop for the page)."""
        items, next_token = self.s.store.list_batches(size, token)
        return [jobs.settle(self.s.store, b, now) for b in items], next_token

    async def list(self, request: Request) -> Response:
        await guard(self.s, request, "batches.list")
        version(request)
        partial = request.query_params.get("returnPartialSuccess") or request.query_params.get(
            "return_partial_success"
        )
        if partial is not None and partial.lower() == "true":
            # "not supported by default and will result in an UNIMPLEMENTED error if set"
            # (the discovery document's description of batches.list).
            return wire.error(501, "returnPartialSuccess is not supported for batches.")
        size, token = page_args(request, self.s.settings.get(), "batches")
        now = self.s.clock()
        settled, next_token = await run_in_threadpool(self._settled_page, size, token, now)
        body: dict[str, Any] = {}
        if settled:
            body["operations"] = [wire.operation_json(b, now, None) for b in settled]
        if next_token is not None:
            body["nextPageToken"] = next_page_token("batches", next_token)
        return JSONResponse(body)
