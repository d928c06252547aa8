"""Wiring shared by plan, apply, status and friends: desired, state, live, plan, in one place."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.clock import Clock, SystemClock
from reconciler.config import Project
from reconciler.errors import ConfigError, Diagnostic, ManifestError, ServiceError, Severity
from reconciler.live.reading import open_reader
from reconciler.live.rest_reads import ServiceReader
from reconciler.live.settings import AdapterSettings
from reconciler.live.snapshot import Live
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.desired import Desired
from reconciler.manifests.loader import load_desired, resource_spec_hash
from reconciler.manifests.models_catalogue import service_model_problem
from reconciler.manifests.remote import Remote, remote_uris, with_remote_sources
from reconciler.manifests.vertex_rules import existing_table_problem
from reconciler.plan.actions import Plan
from reconciler.plan.planner import key_digests_wanted, plan_now
from reconciler.state.backend import LockInfo, StateBackend
from reconciler.state.document import State
from reconciler.state.registry import open_backend
from reconciler.state.request_keys import load_key_digests
from reconciler.state.results_check import check_local_results

if TYPE_CHECKING:
    from reconciler.live.service import BatchService

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `1h`, `500ms` or plain seconds -> seconds.

    Raises:
        ConfigError: not a duration.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"invalid duration {text!r}: expected e.g. 0, 30s, 5m, 1h, 500ms")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def lock_timeout_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-timeout",
        default="0s",
        show_default=True,
        metavar="DURATION",
        help="How long to wait for the state lock (e.g. 30s, 5m); 0 fails at once if it is held.",
    )(f)


@contextmanager
def opened_backend(project: Project) -> Iterator[StateBackend]:
    backend = open_backend(project)
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def locked_backend(project: Project, lock_timeout: str) -> Iterator[StateBackend]:
    """The backend with the lock held, for a command that reads, changes and writes the state."""
    timeout = parse_duration(lock_timeout)
    # The command path only, never argv: flags may carry a URL with a password.
    operation = click.get_current_context().command_path
    with opened_backend(project) as backend, backend.lock(LockInfo.new(operation), timeout=timeout):
        yield backend


def run_with_adapter(
    project: Project,
    clock: Clock,
    work: Callable[[BatchService], Awaitable[T]],
    *,
    settings: AdapterSettings | None = None,
) -> T:
    """Open the adapter for the project's endpoint, run `work`, close it. One event loop.

    `settings`: retries and timeouts (default: apply's patient ones)."""
    # Imported here: the adapter loads the SDK, which commands that only read never need.
    from reconciler.live.gemini import open_adapter

    async def main() -> T:
        async with open_adapter(project, clock=clock, settings=settings) as adapter:
            return await work(adapter)

    return asyncio.run(main())


@dataclass(frozen=True, slots=True)
class PlanRequest:
    targets: tuple[str, ...] = ()
    force_replace: tuple[str, ...] = ()
    refresh_only: bool = False
    destroy: bool = False


def build_plan(
    project: Project,
    desired: Desired,
    state: State,
    live: Live,
    backend: StateBackend,
    request: PlanRequest,
    clock: Clock,
) -> Plan:
    """The plan for this project now, with its price table and guardrails."""
    return plan_now(
        project.config,
        desired,
        state,
        live,
        now=clock.now(),
        previous_key_digests=load_key_digests(
            backend, state, key_digests_wanted(desired, state, request.force_replace)
        ),
        targets=request.targets,
        force_replace=request.force_replace,
        refresh_only=request.refresh_only,
        destroy=request.destroy,
        results_checks=check_local_results(project.root, state),
    )


class ServiceReads:
    """The service read on a thread of its own, started before the command needs it.

    `plan` loads the manifests and the state (CPU work in this thread) and lists the jobs
    (waiting for the service, on another connection): started first, the listing's wait
    overlaps the loading instead of following it. The thread runs its own event loop (the
    plan's reads are all it runs) with the reader open and the jobs walk under way; `run` hands
    it the rest of the reads. Whatever fails there is raised by `run` in the command's thread,
    as it was raised; `close` stops the thread and retrieves what nobody asked for, so a
    command that fails first (a manifest error) leaves no task and no error behind.
    """

    def __init__(self, project: Project, clock: Clock) -> None:
        self._project = project
        self._clock = clock
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        # The loop and its stop signal exist before the thread starts, so `close` can always
        # reach them: a command that fails at once (a manifest error) may close before the
        # thread has run a line, and a stop it could not send left `close` joining forever.
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._reader: ServiceReader | None = None
        self._jobs: asyncio.Future[Live] | None = None
        self._thread = threading.Thread(target=self._serve, name="service-reads", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            with asyncio.Runner(loop_factory=lambda: self._loop) as runner:
                runner.run(self._main())
        except BaseException as exc:  # raised again by `run`, in the command's thread
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        async with open_reader(self._project, clock=self._clock) as reader:
            jobs = asyncio.ensure_future(reader.snapshot(include_files=False))
            self._reader, self._jobs = reader, jobs
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                jobs.cancel()
                with contextlib.suppress(BaseException):
                    await jobs  # retrieved: a failure nobody asked for is not reported

    def run(self, work: Callable[[ServiceReader, Awaitable[Live]], Coroutine[Any, Any, T]]) -> T:
        """`work(reader, jobs)` on the reads' thread, where `jobs` is the listing started
        early (`snapshot(include_files=False)`); its result, or what it raised.

        Raises:
            ReconcilerError: opening the reader failed (e.g. no API key), or `work` failed.
        """
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        assert self._loop is not None and self._reader is not None and self._jobs is not None
        jobs = self._jobs

        async def shielded() -> Live:
            # The early task is awaited here, never cancelled by `work` being cancelled.
            return await asyncio.shield(jobs)

        return asyncio.run_coroutine_threadsafe(work(self._reader, shielded()), self._loop).result()

    def close(self) -> None:
        """Stop the thread (the jobs walk cancelled if it is still under way) and wait for it;
        a stop sent before the loop runs is carried out as soon as it does."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the thread has ended
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()


@contextmanager
def service_reads(project: Project, clock: Clock) -> Iterator[ServiceReads]:
    """`ServiceReads` started now, closed when the block ends."""
    reads = ServiceReads(project, clock)
    try:
        yield reads
    finally:
        reads.close()


def plan_against_live(
    project: Project,
    desired: Desired,
    state: State,
    backend: StateBackend,
    request: PlanRequest,
    clock: Clock,
    *,
    check_output_tables: bool = False,
    reads: ServiceReads | None = None,
) -> tuple[Live, Plan]:
    """Read the live jobs (one paginated list), check every model with the service (unless
    destroying or only refreshing), and plan against them. `check_output_tables` (`plan`,
    `apply`): also look up each BigQuery output table and refuse a plan that would create a
    job into one that exists (`status` and the web view show such a plan as it is). `reads`:
    the service reads a caller started before loading (else they start here).

    Raises:
        ManifestError: a resource names a model the service does not know, or one whose
            batch methods do not fit its task, or (`check_output_tables`) would write a table
            that exists -- before anything is uploaded or created.
    """
    check = not (request.destroy or request.refresh_only)
    tables = sorted(output_tables(desired)) if check and check_output_tables else []
    # Files are listed when the plan may upload inputs: `plan` counts them against the
    # project's Files storage (limits.storage_bytes).
    uploads = check and any(r.manifest.spec.source.file for r in desired.resources.values())

    async def read(
        reader: ServiceReader, jobs: Awaitable[Live]
    ) -> tuple[Live, list[Diagnostic], set[str]]:
        listing = _listing(reader, jobs, include_files=uploads)
        if not check:
            return await listing, [], set()
        # The model check does not wait for the listing: both are reads.
        live, problems = await asyncio.gather(listing, _model_diagnostics(reader, desired))
        existing = {uri for uri in tables if await reader.get_file(uri) is not None}
        return live, problems, existing

    if reads is None:
        with service_reads(project, clock) as started:
            live, problems, existing = started.run(read)
    else:
        live, problems, existing = reads.run(read)
    if any(d.severity is Severity.ERROR for d in problems):
        raise ManifestError(problems)
    plan = build_plan(project, desired, state, live, backend, request, clock)
    refused = existing_table_problems(plan, desired, existing)
    if refused:
        raise ManifestError(refused)
    return live, plan


async def _listing(reader: ServiceReader, jobs: Awaitable[Live], *, include_files: bool) -> Live:
    """The jobs listing and, when asked, the files listed beside it (a failure of either is
    raised, the other walk cancelled and awaited), as `snapshot(include_files=...)` lists."""
    if not include_files:
        return await jobs
    files_walk = asyncio.ensure_future(reader.list_files())
    try:
        live = await jobs
        files = await files_walk
    finally:
        if not files_walk.done():
            files_walk.cancel()
            with contextlib.suppress(asyncio.CancelledError, ServiceError):
                await files_walk
    if files is None:
        return live
    return dataclasses.replace(live, files=dict(sorted(files.items())), files_listed=True)


def output_tables(desired: Desired) -> set[str]:
    """The BigQuery output tables (Vertex) of `desired`."""
    return {
        r.manifest.spec.output
        for r in desired.resources.values()
        if is_bigquery(r.manifest.spec.output)
    }


def existing_table_problems(plan: Plan, desired: Desired, existing: set[str]) -> list[Diagnostic]:
    """A diagnostic per action that would create a job writing to a BigQuery table that
    exists: Vertex refuses it (manifests/vertex_rules.DESTINATION_SOURCE), so `plan` says so
    before anything is uploaded, rather than apply failing at the create."""
    found: list[Diagnostic] = []
    for action in plan.actions:
        resource = desired.resources.get(action.resource)
        if resource is None or not action.kind.creates_job:
            continue
        table = resource.manifest.spec.output
        if table in existing:
            message, hint = existing_table_problem(table)
            found.append(
                Diagnostic(
                    f"resource `{action.resource}` would run a job ({action.kind.value}, "
                    f"because {action.reason.text}), but {message}",
                    resource.location,
                    hint=hint,
                )
            )
    return found


async def _model_diagnostics(adapter: ServiceReader, desired: Desired) -> list[Diagnostic]:
    """One `models.get` per distinct model; a diagnostic per resource whose model is wrong."""
    specs = {name: r.manifest.spec for name, r in desired.resources.items()}
    models = sorted({s.model for s in specs.values()})
    answers = dict(zip(models, await asyncio.gather(*map(adapter.get_model, models)), strict=True))
    found: list[Diagnostic] = []
    for name, spec in specs.items():
        answer = answers[spec.model]
        methods = None if answer is None else answer.supported_methods
        problem = service_model_problem(spec.model, spec.task, methods)
        if problem is not None:
            found.append(
                Diagnostic(
                    f"resource `{name}`: {problem.message}",
                    desired.resources[name].location,
                    problem.severity,
                    hint=problem.hint,
                )
            )
    return found


def load_project_desired(project: Project, paths: Sequence[str] = ()) -> Desired:
    """The desired resources, with input tokens counted by the SDK's local tokenizer where it
    runs offline (live/local_tokens.py: a pre-plan step, so the planner stays pure), and
    `source.gcs` objects and `source.bigquery` tables (Vertex) digested from their versions.

    Raises:
        ManifestError: a manifest is invalid, or a remote source does not exist.
    """
    from pathlib import Path

    from reconciler.live.local_tokens import count_input_tokens, offline_counter

    desired = count_input_tokens(
        load_desired(project, [Path(p) for p in paths] or None), project.root, offline_counter
    )
    uris = remote_uris(desired)
    if not uris:
        return desired

    from reconciler.live.gemini import remote_objects

    async def look(adapter: BatchService) -> dict[str, Remote | None]:
        return await remote_objects(adapter, uris)

    found = run_with_adapter(project, system_clock(), look)
    desired, problems = with_remote_sources(desired, found, resource_spec_hash)
    if problems:
        raise ManifestError(problems)
    return desired


def system_clock() -> Clock:
    return SystemClock()
