"""`reconciler ui`: the local, read-only web view of the project.

Thin: it wires what the view reads (state, manifests, a live listing and the plan, other
attempts' results from the service) into `reconciler.ui` and serves it with uvicorn.
"""

from __future__ import annotations

import json
import threading
import webbrowser
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
from reconciler.config import Project
from reconciler.errors import ConfigError, ExitCode, ReconcilerError
from reconciler.live.gemini import BatchService
from reconciler.live.snapshot import InlineResult
from reconciler.manifests.desired import Desired
from reconciler.plan.cost import project_price_table
from reconciler.ui.app import UiSources, create_app, host_names
from reconciler.ui.files import ATTEMPT_OUTPUTS_DIR
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


class _Reader:
    """What the view reads, read afresh on every page (the state may change under it)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.clock = system_clock()
        self.prices = project_price_table(project.config.endpoint, project.config.prices)
        # One reader at a time: a page load may start the embedded emulator's adapter, and
        # two at once would only do the same work twice.
        self.lock = threading.Lock()

    def snapshot(self, with_live: bool) -> Snapshot:
        desired: Desired | None = None
        desired_error = live_error = None
        try:
            desired = load_project_desired(self.project)
        except ReconcilerError as exc:
            desired_error = str(exc)
        with self.lock, opened_backend(self.project) as backend:
            state = backend.read()
            live = plan = None
            # Without the manifests there is no plan to show: planning against none would
            # read as "forget every resource".
            if with_live and desired is not None:
                try:
                    live, plan = plan_against_live(
                        self.project,
                        desired,
                        state,
                        backend,
                        PlanRequest(),
                        self.clock,
                    )
                except ReconcilerError as exc:
                    live_error = str(exc)
        return Snapshot(desired, state, live, plan, self.prices, desired_error, live_error)

    def fetch_output(self, job_name: str) -> Path | None:
        """Another attempt's results, downloaded from the service once, for the diff view."""
        folder = self.project.root / ATTEMPT_OUTPUTS_DIR
        target = folder / f"{job_name.replace('/', '-')}.jsonl"
        if target.exists():
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
                return target if run_with_adapter(self.project, self.clock, fetch) else None
            except ReconcilerError:
                return None


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
