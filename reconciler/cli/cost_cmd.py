"""`reconciler cost`: what the collected jobs cost, by model, resource or label, from the state
alone (no manifests needed, no network)."""

from __future__ import annotations

import click

from reconciler.cli.context import CliContext, format_option
from reconciler.cli.session import opened_backend
from reconciler.errors import ExitCode

_GROUPINGS = ("model", "resource")


def _grouping(value: str) -> str:
    """`model`, `resource` or `label:<name>`.

    Raises:
        click.BadParameter: anything else.
    """
    if value in _GROUPINGS or (value.startswith("label:") and len(value) > len("label:")):
        return value
    raise click.BadParameter(
        f"{value!r}: use `model`, `resource` or `label:<name>` (e.g. `label:team`)",
        param_hint="--by",
    )


@click.command("cost")
@click.option(
    "--by",
    "by",
    multiple=True,
    metavar="GROUPING",
    help="Group by `model`, `resource` or `label:<name>` (repeatable). Default: model, resource.",
)
@format_option()
@click.pass_obj
def cost(obj: CliContext, by: tuple[str, ...], output_format: str) -> int:
    """What the collected jobs cost: tokens their results reported, at batch price.

    Read from the state only: a job counts once its results were collected, at the prices
    of that day (the shipped table with the project's `prices:` overrides).
    """
    from reconciler.render.spend import (
        group_spend,
        job_spend,
        render_spend_json,
        render_spend_text,
    )

    groupings = [_grouping(value) for value in by] or list(_GROUPINGS)
    project = obj.project()
    with opened_backend(project) as backend:
        state = backend.read()
    jobs = job_spend(state)
    grouped = [(grouping, group_spend(jobs, grouping)) for grouping in groupings]
    if output_format == "json":
        click.echo(render_spend_json(grouped, jobs), nl=False)
    else:
        click.echo(render_spend_text(grouped), nl=False)
    return ExitCode.OK
