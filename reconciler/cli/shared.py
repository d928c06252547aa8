"""Helpers shared by the commands: render a plan, the plan flags, confirm, execute a plan.

Commands import this module and never each other; it imports no command and not `main`. What
only `execute` needs (the apply stages, the adapter and with it the SDK, the terminal
reporters) is imported when it runs: `plan` imports this module and never loads the SDK.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import click

from reconciler.cli.context import INTERRUPTED, CliContext, format_option
from reconciler.cli.session import run_with_adapter, system_clock
from reconciler.clock import Clock
from reconciler.config import Project
from reconciler.errors import ApplyError, ConfigError, ExitCode
from reconciler.live.snapshot import Live
from reconciler.manifests.desired import Desired
from reconciler.plan.actions import Plan
from reconciler.state.backend import StateBackend
from reconciler.state.document import State

if TYPE_CHECKING:
    from reconciler.apply.context import ApplyOptions, ApplyReport
    from reconciler.cli.event_stream import JsonReporter
    from reconciler.cli.reporting import PlainReporter, RichReporter
    from reconciler.live.service import BatchService
    from reconciler.render.spend import ResourceCost

LISTING_REUSE_SECONDS = 10.0
"""How old the plan's listing may be for apply to run on it rather than list again: no prompt
was answered in between (a person reading the plan takes longer), so only the seconds the plan
took have passed; under the lock, no other run created or adopted a job meanwhile."""

_KEPT_SHOWN = 3
"""How many kept results files the apply summary names before "and N more"."""


def render(
    plan: Plan, output_format: str, *, color: bool, costs: Mapping[str, ResourceCost] | None = None
) -> str:
    """The plan in the asked format (imports kept local: only one renderer is needed per run).
    `costs`: per resource, the estimate vs the actual cost so far (Markdown shows them)."""
    if output_format == "json":
        from reconciler.render.json import render_json

        return render_json(plan)
    if output_format == "markdown":
        from reconciler.render.markdown import render_markdown

        return render_markdown(plan, costs=costs)
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
                help="Only this resource (repeatable).",
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


events_format_option = format_option(
    help="json: one JSON object per line on stdout for each step "
    "(schemas/events.schema.json); needs --auto-approve."
)
"""`--format text|json` of apply and destroy."""


def require_approval_for_json(output_format: str, auto_approve: bool) -> None:
    """Machine-readable runs cannot ask: as Terraform's `-json`, they need --auto-approve."""
    if output_format == "json" and not auto_approve:
        raise ConfigError("--format json cannot ask for confirmation", hint="add --auto-approve")


def confirm(auto_approve: bool, question: str) -> bool:
    """Ask before changing the world; refuse (as Terraform) when nobody can answer."""
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(
            "apply needs confirmation, but standard input is not a terminal",
            hint="pass --auto-approve (CI), or run it in a terminal",
        )
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        # Ctrl-C at the prompt: the terminal shows "^C" on the prompt's line; end that line
        # so the interruption is reported on its own (click's other Abort paths do this).
        click.echo(err=True)
        raise


Operation = Literal["apply", "destroy"]


def execute(
    obj: CliContext,
    project: Project,
    desired: Desired,
    backend: StateBackend,
    plan: Plan,
    options: ApplyOptions,
    *,
    verb: Operation = "apply",
    output_format: str = "text",
    listed: Live | None = None,
) -> int:
    """Run `plan` with the executor under the held `backend`, reporting to stderr (a live view
    on a terminal, timestamped lines elsewhere) or, with `output_format` "json", as JSON lines
    on stdout; the exit code.

    Ctrl-C stops the run at once: the state holds every step that finished (a write under way
    completes first), one line says how many jobs go on at the service, and the exit code is
    130, as a shell's for SIGINT.

    `listed`: the listing `plan` was made against, under the lock `backend` holds; apply runs
    on it instead of listing again while it is younger than `LISTING_REUSE_SECONDS`."""
    # Imported here: the executor pulls in every apply stage, which `plan` and `status` (these
    # commands share the CLI's import) never run.
    from reconciler.apply.context import ApplyContext, ApplyReport
    from reconciler.apply.executor import apply_plan
    from reconciler.apply.store import StateStore
    from reconciler.cli.reporting import RichReporter

    clock = system_clock()
    json_out = _json_reporter(plan, verb, clock) if output_format == "json" else None
    reporter = json_out or _terminal_reporter(obj, plan, verb, clock)

    store = StateStore(backend, backend.read())
    report = ApplyReport()

    async def work(adapter: BatchService) -> None:
        context = ApplyContext(
            project=project,
            desired=desired,
            adapter=adapter,
            store=store,
            clock=clock,
            reporter=reporter,
            options=options,
            report=report,
        )
        fresh = listed is not None and age_seconds(listed, clock) <= LISTING_REUSE_SECONDS
        await apply_plan(context, plan, listed if fresh else None)

    try:
        with contextlib.ExitStack() as stack:
            if isinstance(reporter, RichReporter):
                stack.enter_context(reporter)
            run_with_adapter(project, clock, work)
    except KeyboardInterrupt:
        # Re-read: a write that was under way when the run was cancelled finished on its
        # thread, and the store in memory may not know it.
        running = running_jobs(backend.read())
        line = (
            f"interrupted: {sum(running.values())} job(s) keep running at the service; "
            "run `reconciler apply` to resume"
        )
        if json_out is not None:
            json_out.outcome("interrupted", line, unsettled=sorted(running))
        click.echo(line, err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
    except ApplyError as failed:
        if json_out is not None:
            json_out.outcome(
                "failed", str(failed), failed=sorted(report.failures), unsettled=report.unsettled
            )
        raise
    _tell_outcome(json_out, report, verb)
    return ExitCode.OK


def age_seconds(live: Live, clock: Clock) -> float:
    """How long ago `live` was listed, by `clock`."""
    return (clock.now() - live.observed_at).total_seconds()


def _json_reporter(plan: Plan, verb: Operation, clock: Clock) -> JsonReporter:
    # Imported here: its pydantic line models are for `--format json` runs only.
    from reconciler.cli.event_stream import JsonReporter

    reporter = JsonReporter(sys.stdout, clock)
    reporter.begin(plan, verb)
    return reporter


def _terminal_reporter(
    obj: CliContext, plan: Plan, verb: Operation, clock: Clock
) -> PlainReporter | RichReporter:
    from reconciler.cli.reporting import PlainReporter, RichReporter

    if sys.stderr.isatty():
        return RichReporter(plan, title=f"reconciler {verb}", color=obj.color, clock=clock)
    return PlainReporter(color=False, clock=clock)


def _tell_outcome(json_out: JsonReporter | None, report: ApplyReport, verb: Operation) -> None:
    """The run's last lines: on stderr, or as the JSON stream's outcome line."""
    lines = []
    if report.unsettled:
        lines.append(
            f"{len(report.unsettled)} job(s) still running: {', '.join(report.unsettled)}. "
            "Run `reconciler apply` again later to collect their results."
        )
    if report.waiting:
        lines.append(
            f"{len(report.waiting)} resource(s) wait for capacity (max_concurrent_jobs, "
            f"enqueued tokens): "
            f"{', '.join(report.waiting)}. The next `reconciler apply` creates them."
        )
    if report.kept_files:
        # Expected, not a fault (the service refuses to delete the results files it
        # generates): one line however many jobs, the first few named; `status` has them all.
        shown = "; ".join(report.kept_files[:_KEPT_SHOWN])
        more = len(report.kept_files) - _KEPT_SHOWN
        lines.append(
            f"{len(report.kept_files)} results file(s) the service would not delete: {shown}"
            + (f"; and {more} more (`reconciler status` lists them)" if more > 0 else "")
        )
    lines.append(f"{verb.capitalize()} complete.")
    if json_out is not None:
        json_out.outcome(
            "complete", " ".join(lines), unsettled=report.unsettled, waiting=report.waiting
        )
        return
    for line in lines:
        click.echo(line, err=True)


def running_jobs(state: State) -> dict[str, int]:
    """Per resource, the jobs of its current attempt that the state knows and that have not
    ended (resources without any left out)."""
    running: dict[str, int] = {}
    for name, record in state.resources.items():
        if not record.attempts:
            continue
        for attempt in record.attempt_group(record.current_number):
            if attempt.job_name is not None and not attempt.state.is_terminal:
                running[name] = running.get(name, 0) + 1
    return running
