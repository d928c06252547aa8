"""`reconciler results`, `destroy` and `import`: per-resource commands around apply."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from reconciler.apply.context import ApplyOptions
from reconciler.apply.maintain import imported_record
from reconciler.cli.context import CliContext, format_option
from reconciler.cli.session import (
    PlanRequest,
    load_project_desired,
    lock_timeout_option,
    locked_backend,
    opened_backend,
    plan_against_live,
    run_with_adapter,
    system_clock,
)
from reconciler.cli.shared import (
    confirm,
    events_format_option,
    execute,
    render,
    require_approval_for_json,
)
from reconciler.config import Project
from reconciler.errors import ExitCode, PlanError, StateError
from reconciler.live import gcs
from reconciler.live.tags import parse_tag, project_tokens
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.desired import Desired

if TYPE_CHECKING:
    from reconciler.live.snapshot import LiveJob
    from reconciler.state.document import State


@click.command("results")
@click.argument("name")
@click.option("--print", "print_", is_flag=True, help="Stream the results JSONL to stdout.")
@format_option()
@click.pass_obj
def results(obj: CliContext, name: str, print_: bool, output_format: str) -> int:
    """Where a resource's results are, and how many succeeded and failed."""
    project = obj.project()
    with opened_backend(project) as backend:
        state = backend.read()
    record = state.resources.get(name)
    if record is None:
        raise StateError(
            f"no resource named {name!r} in the state", hint="see `reconciler state list`"
        )
    collected = record.results
    if collected is None:
        current = record.current_attempt
        where = f" (attempt {current.number} is {current.state.value})" if current else ""
        raise StateError(
            f"{name} has no collected results yet{where}", hint="run `reconciler apply`"
        )
    if print_:
        if gcs.is_gcs(collected.location):
            gcs.copy_to_stream(collected.location, sys.stdout.buffer)
        elif is_bigquery(collected.location):
            _print_table(project, name, collected.location)
        else:
            local = project.root / collected.location
            try:
                handle = local.open("rb")
            except OSError as exc:
                raise StateError(
                    f"{name}'s results at {collected.location} cannot be read: "
                    f"{exc.strerror or exc}",
                    hint="run `reconciler plan` to see whether apply can download them again",
                ) from None
            with handle:
                while chunk := handle.read(1 << 20):
                    sys.stdout.buffer.write(chunk)
        return ExitCode.OK
    if output_format == "json":
        click.echo(
            json.dumps(
                {"resource": name, **collected.model_dump(mode="json")}, indent=2, sort_keys=True
            )
        )
        return ExitCode.OK
    click.echo(
        f"{name}: {collected.succeeded} succeeded, {collected.failed} failed\n"
        f"  location:  {collected.location}\n"
        f"  sha256:    {collected.sha256}\n"
        f"  bytes:     {collected.bytes}\n"
        f"  collected: {collected.collected_at.isoformat(timespec='seconds')}\n"
        f"  attempts:  {', '.join(str(n) for n in collected.from_attempts)}"
    )
    return ExitCode.OK


@click.command("destroy")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--target", "targets", multiple=True, metavar="NAME", help="Only this resource (repeatable)."
)
@click.option("--prune", is_flag=True, help="Also delete service-side input and output files.")
@events_format_option
@lock_timeout_option
@click.pass_obj
def destroy(
    obj: CliContext,
    auto_approve: bool,
    targets: tuple[str, ...],
    prune: bool,
    output_format: str,
    lock_timeout: str,
) -> int:
    """Cancel every managed running job and forget every resource. Results stay where they are."""
    require_approval_for_json(output_format, auto_approve)
    project = obj.project()
    clock = system_clock()
    nothing = Desired(resources={}, manifests_sha256="destroy")
    with locked_backend(project, lock_timeout) as backend:
        state = backend.read()
        _, made = plan_against_live(
            project, nothing, state, backend, PlanRequest(targets=targets, destroy=True), clock
        )
        if output_format == "text":
            click.echo(render(made, "text", color=obj.color and sys.stdout.isatty()), nl=False)
        if not made.has_changes and output_format == "text":
            return ExitCode.OK
        if not confirm(auto_approve, "Cancel and forget these resources?"):
            click.echo("Destroy cancelled.", err=True)
            return ExitCode.ERROR
        options = ApplyOptions(wait=False, parallelism=project.config.parallelism, prune=prune)
        return execute(
            obj,
            project,
            nothing,
            backend,
            made,
            options,
            verb="destroy",
            output_format=output_format,
        )


@click.command("import")
@click.argument("name")
@click.argument("job_name", metavar="BATCH_JOB_NAME")
@click.option(
    "--take-over",
    is_flag=True,
    help="Import a job whose identity tag names another reconciler project (this project's own "
    "job from a lost state without a `project:` id): this project then owns it, cancels it on "
    "destroy and deletes its service files under `cleanup:`.",
)
@lock_timeout_option
@click.pass_obj
def import_(obj: CliContext, name: str, job_name: str, take_over: bool, lock_timeout: str) -> int:
    """Adopt an existing service job (batches/...) as the current attempt of manifest NAME.

    A job another reconciler project made (its display name carries that project's tag) is
    refused without --take-over: once imported, this project's destroy would cancel it and its
    cleanup delete the results that project has yet to collect.
    """
    project = obj.project()
    clock = system_clock()
    desired = load_project_desired(project)
    resource = desired.resources.get(name)
    if resource is None:
        raise PlanError(
            f"no manifest named {name!r}", hint="import needs the manifest the job belongs to"
        )
    if not job_name.startswith("batches/"):
        job_name = f"batches/{job_name}"

    with locked_backend(project, lock_timeout) as backend:
        state = backend.read()
        if any(a.job_name == job_name for r in state.resources.values() for a in r.attempts):
            raise StateError(f"{job_name} is already in the state")
        job = run_with_adapter(project, clock, lambda a: a.get_job(job_name))
        if job is None:
            raise StateError(f"the service has no job {job_name}")
        if not take_over:
            _refuse_another_projects_job(state, job)
        record, number = imported_record(state.resources.get(name), resource, job, clock.now())
        backend.write(state.with_resource(record), state.serial)
    click.echo(f"Imported {job.name} ({job.state.value}) as attempt {number} of {name}.", err=True)
    return ExitCode.OK


def _refuse_another_projects_job(state: State, job: LiveJob) -> None:
    tag = parse_tag(job.display_name)
    if tag is None or tag.project is None:
        return  # made by hand or by a reconciler older than project tokens: nobody else's claim
    if tag.owned_by(project_tokens(state.project, state.lineage)):
        return
    raise StateError(
        f"{job.name} belongs to another reconciler project (its tag {tag} names project "
        f"{tag.project}); imported here, this project's destroy would cancel it and its cleanup "
        "delete results that project has not collected",
        hint="if it is this project's own job from a state that was lost, run import again "
        "with --take-over",
    )


@click.command("status")
@format_option()
@click.pass_obj
def status(obj: CliContext, output_format: str) -> int:
    """Per resource: desired vs recorded vs live state, attempts, results and the next action."""
    from reconciler.plan.cost import project_price_table
    from reconciler.render.status import render_status_json, render_status_text, status_rows

    project = obj.project()
    clock = system_clock()
    desired = load_project_desired(project)
    with opened_backend(project) as backend:
        state = backend.read()
        live, made = plan_against_live(project, desired, state, backend, PlanRequest(), clock)
    prices = project_price_table(project.config.endpoint, project.config.prices)
    rows = status_rows(desired, state, live, made, prices)
    if output_format == "json":
        click.echo(render_status_json(rows))
    else:
        click.echo(render_status_text(rows, color=obj.color and sys.stdout.isatty()), nl=False)
    return ExitCode.OK


def _print_table(project: Project, name: str, uri: str) -> None:
    """A BigQuery results table's rows as result lines (the job wrote them there; nothing was
    downloaded at collection)."""
    import os

    from reconciler.live.vertex_bigquery import BigQueryError, copy_to_stream
    from reconciler.live.vertex_target import vertex_target

    target = vertex_target(project.config.vertex, os.environ)
    try:
        copy_to_stream(
            target.bigquery_url,
            uri,
            sys.stdout.buffer,
            beside_emulator=target.base_url is not None or target.embedded,
        )
    except BigQueryError as exc:
        raise StateError(
            f"{name}'s results in {uri} cannot be read: {exc}",
            hint="check the table exists and the credentials may read it",
        ) from None
