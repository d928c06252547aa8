"""`reconciler apply` and `reconciler destroy`: make the service match git, then wait and collect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from reconciler.apply.context import ApplyOptions
from reconciler.cli.context import CliContext
from reconciler.cli.extras import require_extras
from reconciler.cli.session import (
    PlanRequest,
    load_project_desired,
    lock_timeout_option,
    locked_backend,
    parse_duration,
    plan_against_live,
    system_clock,
)
from reconciler.cli.shared import (
    confirm,
    events_format_option,
    execute,
    plan_options,
    render,
    require_approval_for_json,
)
from reconciler.config import Project
from reconciler.errors import ConfigError, ExitCode, PlanError
from reconciler.live.snapshot import Live
from reconciler.manifests.desired import Desired
from reconciler.plan import planfile
from reconciler.plan.actions import Plan
from reconciler.plan.guardrails import raise_for_violations
from reconciler.plan.planner import settings_sha256
from reconciler.state.backend import StateBackend
from reconciler.state.document import State


@click.command("apply")
@click.argument(
    "planfile_path",
    metavar="[PLANFILE]",
    required=False,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
)
@plan_options
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Do not ask for confirmation (required without a terminal).",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Poll until every job settles and collect results (default: on a terminal).",
)
@click.option(
    "--timeout",
    "timeout",
    metavar="DURATION",
    help="Stop waiting after this long (e.g. 30m); the next apply collects.",
)
@click.option(
    "--parallelism",
    type=click.IntRange(1, 256),
    help="Service calls at once (default from reconciler.yaml).",
)
@click.option(
    "--prune", is_flag=True, help="Also delete service-side files of forgotten resources."
)
@events_format_option
@lock_timeout_option
@click.pass_obj
def apply(
    obj: CliContext,
    planfile_path: Path | None,
    targets: tuple[str, ...],
    force_replace: tuple[str, ...],
    refresh_only: bool,
    auto_approve: bool,
    wait: bool | None,
    timeout: str | None,
    parallelism: int | None,
    prune: bool,
    output_format: str,
    lock_timeout: str,
) -> int:
    """Create, cancel and collect jobs until the service matches the manifests."""
    require_approval_for_json(output_format, auto_approve or planfile_path is not None)
    project = obj.project()
    desired = load_project_desired(project)
    require_extras(project.config, desired.resources.values())
    options = ApplyOptions(
        wait=sys.stdin.isatty() if wait is None else wait,
        timeout_seconds=parse_duration(timeout) if timeout else None,
        parallelism=parallelism or project.config.parallelism,
        prune=prune,
        targets=targets,
    )
    clock = system_clock()
    with locked_backend(project, lock_timeout) as backend:
        state = backend.read()
        if planfile_path is not None:
            if targets or force_replace or refresh_only:
                raise ConfigError(
                    "--target, --replace and --refresh-only are set when planning, not with a saved plan"
                )
            listed, made = _verified_saved_plan(project, desired, state, backend, planfile_path)
            approved = True
        else:
            listed, made = plan_against_live(
                project,
                desired,
                state,
                backend,
                PlanRequest(targets, force_replace, refresh_only),
                clock,
                check_output_tables=True,
            )
            if output_format == "text":
                color = obj.color and sys.stdout.isatty()
                click.echo(render(made, "text", color=color), nl=False)
            raise_for_violations(made)
            approved = not made.has_changes or confirm(auto_approve, "Apply these changes?")
        raise_for_violations(made)
        if not approved:
            click.echo("Apply cancelled.", err=True)
            return ExitCode.ERROR
        return execute(
            obj,
            project,
            desired,
            backend,
            made,
            options,
            output_format=output_format,
            listed=listed,
        )


def _saved_plan_bytes(path: Path) -> bytes:
    """The saved plan's bytes, refused unread over `planfile.MAX_FILE_BYTES`."""
    limit = planfile.MAX_FILE_BYTES
    too_large = f"over the {limit:,}-byte limit for a saved plan; refusing to read it"
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise PlanError(f"saved plan {path} is {size:,} bytes, {too_large}")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise PlanError(f"cannot read saved plan {path}: {exc.strerror or exc}") from None
    if len(data) > limit:  # grown since, or not a regular file
        raise PlanError(f"saved plan {path} is {too_large}")
    return data


def _verified_saved_plan(
    project: Project, desired: Desired, state: State, backend: StateBackend, path: Path
) -> tuple[Live, Plan]:
    """The saved plan at `path`, checked before anything runs: signed (when RECONCILER_PLAN_KEY
    is set), made against this state and these manifests, and every action one the planner
    derives now from the manifests, state and live jobs (planfile.verified_plan); with the
    listing it was checked against."""
    saved = planfile.loads(_saved_plan_bytes(path), signing_key=planfile.signing_key(os.environ))
    planfile.check_plan_current(
        saved, state, desired.manifests_sha256, settings_sha256(project.config)
    )
    request = PlanRequest(saved.targets, saved.force_replace, saved.refresh_only)
    listed, derived = plan_against_live(
        project, desired, state, backend, request, system_clock(), check_output_tables=True
    )
    return listed, planfile.verified_plan(saved, derived)
