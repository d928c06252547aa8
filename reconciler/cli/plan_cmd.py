"""`reconciler plan`: what apply would do, for reviewers (text, JSON, Markdown) and for apply."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from reconciler.cli.context import CliContext, format_option
from reconciler.cli.extras import require_extras
from reconciler.cli.session import (
    PlanRequest,
    load_project_desired,
    opened_backend,
    plan_against_live,
    service_reads,
    system_clock,
)
from reconciler.cli.shared import plan_options, render
from reconciler.errors import ExitCode
from reconciler.plan import planfile
from reconciler.plan.guardrails import raise_for_violations


@click.command("plan")
@plan_options
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan for `reconciler apply PLANFILE` (signed when RECONCILER_PLAN_KEY is set).",
)
@format_option("markdown")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error."
)
@click.pass_obj
def plan(
    obj: CliContext,
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
    refresh_only: bool,
    out: Path | None,
    output_format: str,
    detailed_exitcode: bool,
) -> int:
    """Show what apply would change and what it would cost."""
    project = obj.project()
    clock = system_clock()
    # The jobs listing starts first: the service answers it while the manifests and the
    # state load here (no lock is held by `plan`, so nothing orders the two reads anyway).
    with service_reads(project, clock) as reads:
        desired = load_project_desired(project)
        require_extras(project.config, desired.resources.values())
        with opened_backend(project) as backend:
            state = backend.read()
            _, made = plan_against_live(
                project,
                desired,
                state,
                backend,
                PlanRequest(targets, force_replace, refresh_only),
                clock,
                check_output_tables=True,
                reads=reads,
            )
    color = obj.color and sys.stdout.isatty()
    costs = None
    if output_format == "markdown":
        from reconciler.plan.cost import project_price_table
        from reconciler.render.spend import resource_costs

        prices = project_price_table(project.config.endpoint, project.config.prices)
        costs = resource_costs(desired, state, prices)
    click.echo(render(made, output_format, color=color, costs=costs), nl=False)
    raise_for_violations(made)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        key = planfile.signing_key(os.environ)
        out.write_bytes(planfile.dumps(made, signing_key=key))
        signed = f"signed with {planfile.PLAN_KEY_VARIABLE}" if key else "unsigned"
        click.echo(
            f"Saved the plan ({signed}) to {out}; apply it with `reconciler apply {out}`.",
            err=True,
        )
    if detailed_exitcode and made.has_changes:
        return ExitCode.CHANGES
    return ExitCode.OK
