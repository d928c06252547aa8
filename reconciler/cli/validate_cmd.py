"""`reconciler validate` (manifests and their inputs, all problems at once) and `reconciler schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.cli.context import CliContext, format_option
from reconciler.cli.extras import require_extras
from reconciler.config import Project
from reconciler.errors import ConfigError, Diagnostic, ExitCode, Severity
from reconciler.manifests.desired import Desired


def _missing_extras(project: Project, desired: Desired | None) -> list[Diagnostic]:
    """An extra the valid manifests (or the state) need but is not installed, as a diagnostic."""
    if desired is None:
        return []
    try:
        require_extras(project.config, desired.resources.values())
    except ConfigError as exc:
        return [Diagnostic(exc.message, exc.location, hint=exc.hint)]
    return []


def _as_object(diagnostic: Diagnostic) -> dict[str, object]:
    location = diagnostic.location
    return {
        "file": location.path if location else None,
        "line": location.line if location and location.line else None,
        "column": location.column if location and location.column else None,
        "message": diagnostic.message,
        "severity": diagnostic.severity.value,
        "hint": diagnostic.hint,
    }


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option(
    help="text: `file:line:col: severity: message` lines on stderr. json: one document on stdout."
)
@click.pass_obj
def validate(ctx: CliContext, paths: tuple[Path, ...], output_format: str) -> int:
    """Check manifests and their JSONL inputs without calling the service.

    PATHS are manifest files or directories (searched recursively for *.yaml and *.yml); by
    default the project's `manifests` directory. Every problem is reported, each with its file,
    line and column. Exit status: 0 valid, 1 invalid.
    """
    from reconciler.manifests.loader import load

    try:
        project = ctx.project(required=not paths)
    except ConfigError as exc:
        if output_format != "json":
            raise
        problem = Diagnostic(exc.message, exc.location, hint=exc.hint)
        click.echo(
            json.dumps(
                {
                    "valid": False,
                    "files": [],
                    "resources": [],
                    "diagnostics": [_as_object(problem)],
                },
                indent=2,
            )
        )
        return ExitCode.ERROR
    # Validation needs the checks, not the per-key digests only the planner uses.
    result = load(project, list(paths) or None, key_digests=False)
    missing = _missing_extras(project, result.desired)
    diagnostics = [*result.diagnostics, *missing]
    valid = not result.errors and not missing
    if output_format == "json":
        document = {
            "valid": valid,
            "files": list(result.files),
            "resources": sorted(result.desired.resources) if result.desired else [],
            "diagnostics": [_as_object(d) for d in diagnostics],
        }
        click.echo(json.dumps(document, indent=2))
        return ExitCode.OK if valid else ExitCode.ERROR
    for diagnostic in diagnostics:
        click.echo(str(diagnostic), err=True)
    warnings = sum(1 for d in diagnostics if d.severity is Severity.WARNING)
    if valid:
        count = len(result.desired.resources) if result.desired else 0
        suffix = f", {warnings} warning(s)" if warnings else ""
        click.echo(f"{count} manifest(s) valid in {len(result.files)} file(s){suffix}")
        return ExitCode.OK
    click.echo(f"Error: {len(result.errors) + len(missing)} error(s) in manifests", err=True)
    return ExitCode.ERROR


@click.command("schema")
@click.option(
    "--project",
    "for_project",
    is_flag=True,
    help="The schema of reconciler.yaml instead of a manifest's.",
)
@click.option(
    "--events",
    "for_events",
    is_flag=True,
    help="The schema of one line of `apply --format json` / `destroy --format json`.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file instead of stdout.",
)
def schema(for_project: bool, for_events: bool, output: Path | None) -> None:
    """Print the JSON Schema of a BatchJob manifest (or, with --project, of reconciler.yaml).

    \b
    Editors that run yaml-language-server (VS Code's YAML extension, Neovim, Helix...) validate
    and complete a manifest when its first line names the schema:
        # yaml-language-server: $schema=../schemas/batchjob.schema.json
    (a path relative to the manifest, or a URL). For the project file:
        # yaml-language-server: $schema=schemas/project.schema.json
    The repository keeps them in schemas/; regenerate them with
        reconciler schema -o schemas/batchjob.schema.json
        reconciler schema --project -o schemas/project.schema.json
        reconciler schema --events -o schemas/events.schema.json
    """
    from reconciler.manifests.schema import manifest_schema, project_schema, render

    if for_events:
        from reconciler.cli.event_stream import events_schema_text

        text = events_schema_text()
    else:
        text = render(project_schema() if for_project else manifest_schema())
    if output is None:
        click.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
