"""Helpers shared by the commands: render a plan, the plan flags, confirm, execute a plan.

Commands import this module and never each other; it imports no command and not `main`.
"""

from __future__ import annotations

import contextlib
import sys

import click

from reconciler.apply.context import ApplyContext, ApplyOptions
from reconciler.apply.store import StateStore
from reconciler.cli.context import CliContext
from reconciler.cli.reporting import PlainReporter, RichReporter
from reconciler.cli.session import run_with_adapter, system_clock
from reconciler.config import Project
from reconciler.errors import ConfigError, ExitCode
from reconciler.live.gemini import BatchService
from reconciler.manifests.desired import Desired
from reconciler.plan.actions import Plan
from reconciler.state.backend import StateBackend


def render(plan: Plan, output_format: str, *, color: bool) -> str:
    """The plan in the asked format (imports kept local: only one renderer is needed per run)."""
    if output_format == "json":
        from reconciler.render.json import render_json

        return render_json(plan)
    if output_format == "markdown":
        from reconciler.render.markdown import render_markdown

        return render_markdown(plan)
    from reconciler.render.text import render_text

    return render_text(plan, color=color)


def plan_options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option(
                "--target",
                "targets",
                multiple=True,
                metavar="NAME",
                help="Plan only this resource (repeatable).",
            ),
            click.option(
                "--replace",
                "force_replace",
                multiple=True,
                metavar="NAME",
                help="Replace this resource even if unchanged (repeatable).",
            ),
            click.option(
                "--refresh-only",
                is_flag=True,
                help="Only adopt, refresh and collect; never create, replace or cancel.",
            ),
        ]
    ):
        f = option(f)
    return f


def confirm(auto_approve: bool, question: str) -> bool:
    """Ask before changing the world; refuse (as Terraform) when nobody can answer."""
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(
            "apply needs confirmation, but standard input is not a terminal",
            hint="pass --auto-approve (CI), or run it in a terminal",
        )
    return click.confirm(question, default=False, err=True)


def execute(
    obj: CliContext,
    project: Project,
    desired: Desired,
    backend: StateBackend,
    plan: Plan,
    options: ApplyOptions,
) -> int:
    """Run `plan` with the executor under the held `backend`, reporting to stderr; exit code."""
    clock = system_clock()
    interactive = sys.stderr.isatty()
    reporter: PlainReporter | RichReporter = (
        RichReporter(color=obj.color) if interactive else PlainReporter(color=False)
    )
    # Imported here: the executor pulls in every apply stage, which `plan` and `status` (these
    # commands share the CLI's import) never run.
    from reconciler.apply.executor import apply_plan

    store = StateStore(backend, backend.read())

    async def work(adapter: BatchService) -> None:
        context = ApplyContext(
            project=project,
            desired=desired,
            adapter=adapter,
            store=store,
            clock=clock,
            reporter=reporter,
            options=options,
        )
        report = await apply_plan(context, plan)
        if report.unsettled:
            click.echo(
                f"{len(report.unsettled)} job(s) still running: {', '.join(report.unsettled)}. "
                "Run `reconciler apply` again later to collect their results.",
                err=True,
            )
        if report.waiting:
            click.echo(
                f"{len(report.waiting)} resource(s) wait for capacity (max_concurrent_jobs, "
                f"enqueued tokens): "
                f"{', '.join(report.waiting)}. The next `reconciler apply` creates them.",
                err=True,
            )
        if report.kept_files:
            click.echo(
                f"{len(report.kept_files)} results file(s) the service would not delete: "
                + "; ".join(report.kept_files),
                err=True,
            )

    with contextlib.ExitStack() as stack:
        if isinstance(reporter, RichReporter):
            stack.enter_context(reporter)
        run_with_adapter(project, clock, work)
    click.echo("Apply complete.", err=True)
    return ExitCode.OK
