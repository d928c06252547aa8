"""`reconciler ui`: the local, read-only web view of the project.

Thin: it wires what the view reads (state, manifests, a live listing and the plan, other
attempts' results from the service) into `reconciler.ui` and serves it with uvicorn.
"""

from __future__ import annotations

import json
import os
import threading
import webbrowser
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.cli.context import CliContext
from reconciler.cli.session import (
    PlanRequest,
    load_project_desired,
    opened_backend,
    plan_against_live,
    run_with_adapter,
    system_clock,
)
from reconciler.clock import Clock
from reconciler.config import Project
from reconciler.errors import ConfigError, ExitCode, ReconcilerError
from reconciler.live.service import BatchService
from reconciler.live.snapshot import InlineResult, Live
from reconciler.manifests.desired import Desired
from reconciler.plan.actions import Plan
from reconciler.plan.cost import project_price_table
from reconciler.state.backend import StateBackend
from reconciler.state.document import State
from reconciler.ui.app import UiSources, create_app, host_names
from reconciler.ui.files import output_path, prune_outputs
from reconciler.ui.lineindex import prune_indexes
from reconciler.ui.server import bind, serve
from reconciler.ui.views import Snapshot


def _inline_lines(results: list[InlineResult]) -> str:
    """Inline responses as results JSONL, in the shape apply writes them."""
    lines = []
    for item in results:
        line: dict[str, object] = {"key": item.key}
        if item.error is not None:
            line["error"] = {"code": item.error.code, "message": item.error.message}
        else:
            line["response"] = item.response
        lines.append(json.dumps(line) + "\n")
    return "".join(lines)


LIVE_CACHE_SECONDS = 5.0
"""How long one reading of the service (its job listing, and the plan made against it) serves
page loads: going from the overview to a resource and back lists the jobs once, and a page
that reloads itself every few seconds does not add calls. A new state or new manifests read
the service again at once."""


@dataclass(frozen=True, slots=True)
class _LiveReading:
    """One listing of the service and the plan made against it (or why neither exists)."""

    key: tuple[tuple[str, int], str]
    """The state (`_state_key`) and the manifests' hash it was made against."""
    at: float
    """`Clock.monotonic()` when it was read."""
    live: Live | None
    plan: Plan | None
    error: str | None


def _state_key(state: State) -> tuple[str, int]:
    """Which state this is: its lineage and serial. A project without a state yet reads as a
    new, empty one with a fresh lineage every time: those are all the same state."""
    return (state.lineage, state.serial) if state.serial else ("", 0)


class _Reader:
    """What the view reads: the state and the manifests afresh on every page (they may change
    under it), the service at most every `LIVE_CACHE_SECONDS`."""

    def __init__(self, project: Project, clock: Clock | None = None) -> None:
        self.project = project
        self.clock = clock or system_clock()
        self.prices = project_price_table(project.config.endpoint, project.config.prices)
        # One reader at a time: a page load may start the embedded emulator's adapter, and
        # two at once would only do the same work twice.
        self.lock = threading.Lock()
        self._reading: _LiveReading | None = None
        self._pruned_for: tuple[str, int] | None = None
        """The state (`_state_key`) the view's kept files were last pruned for."""

    def snapshot(self, with_live: bool) -> Snapshot:
        desired: Desired | None = None
        desired_error = live_error = None
        try:
            desired = load_project_desired(self.project)
        except ReconcilerError as exc:
            desired_error = str(exc)
        with self.lock, opened_backend(self.project) as backend:
            state = backend.read()
            if self._pruned_for != _state_key(state):
                self._prune(state)
            live = plan = None
            # Without the manifests there is no plan to show: planning against none would
            # read as "forget every resource".
            if with_live and desired is not None:
                reading = self._live(desired, state, backend)
                live, plan, live_error = reading.live, reading.plan, reading.error
        return Snapshot(desired, state, live, plan, self.prices, desired_error, live_error)

    def _live(self, desired: Desired, state: State, backend: StateBackend) -> _LiveReading:
        """The service's jobs and the plan, from the last reading while it is recent and was
        made against this state and these manifests. A failure is kept as long: with the
        service unreachable every page still answers at once, saying so."""
        key = (_state_key(state), desired.manifests_sha256)
        now = self.clock.monotonic()
        last = self._reading
        if last is not None and last.key == key and now - last.at < LIVE_CACHE_SECONDS:
            return last
        try:
            live, plan = plan_against_live(
                self.project, desired, state, backend, PlanRequest(), self.clock
            )
            reading = _LiveReading(key, now, live, plan, None)
        except ReconcilerError as exc:
            reading = _LiveReading(key, now, None, None, str(exc))
        self._reading = reading
        return reading

    def _prune(self, state: State) -> None:
        """Drop what the view keeps for files and jobs this state no longer has: other
        attempts' fetched results, then the indexes of files gone or changed (both bounded in
        size). Done when the state is first read and whenever it has changed since."""
        jobs = {
            attempt.job_name
            for record in state.resources.values()
            for attempt in record.attempts
            if attempt.job_name is not None
        }
        prune_outputs(self.project.root, jobs)
        prune_indexes(self.project.root)
        self._pruned_for = _state_key(state)

    def fetch_output(self, job_name: str) -> Path | None:
        """Another attempt's results, downloaded from the service once, for the diff view."""
        target = output_path(self.project.root, job_name)
        folder = target.parent
        if target.exists():
            os.utime(target)  # used now: the size bound removes the least recently used
            return target

        async def fetch(adapter: BatchService) -> bool:
            job = await adapter.get_job(job_name)
            if job is None or not (job.output_file or job.has_inline_output):
                return False
            folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            if job.output_file:
                await adapter.download_file(job.output_file, partial)
            else:
                partial.write_text(_inline_lines(await adapter.inline_results(job_name)), "utf-8")
            partial.replace(target)
            return True

        with self.lock:
            try:
                fetched = run_with_adapter(self.project, self.clock, fetch)
            except ReconcilerError:
                return None
            if fetched:
                self._pruned_for = None  # the outputs grew: bound them on the next page
            return target if fetched else None


def _sources(project: Project) -> UiSources:
    reader = _Reader(project)
    name = project.config.project or project.root.name
    return UiSources(project.root, name, reader.snapshot, reader.fetch_output)


@click.command("ui")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. The view shows everything the state knows: keep it local.",
)
@click.option(
    "--port", default=8800, show_default=True, type=int, help="TCP port (0 picks a free one)."
)
@click.option("--open", "open_", is_flag=True, help="Open the view in the default browser.")
@click.pass_obj
def ui(obj: CliContext, host: str, port: int, open_: bool) -> int:
    """Serve a read-only web view: resources, jobs, results and costs."""
    project = obj.project()
    sources = _sources(project)
    app = create_app(sources, allowed_hosts=host_names(host))
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port (0 picks a free one)",
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{bound}/"
    click.echo(f"reconciler ui: serving {project.root} at {address} (Ctrl-C stops)", err=True)

    def open_browser() -> None:
        webbrowser.open(address)

    serve(app, sock, on_ready=open_browser if open_ else None)
    return ExitCode.OK
