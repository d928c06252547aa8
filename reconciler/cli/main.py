"""The `reconciler` command: global options, error handling, and the subcommand registry.

Commands are thin: parse flags, build objects, call one function, print, exit. Only this package
wires backends, the live adapter, the clock and the console together. This module is the top of
the package: it imports every command module and nothing imports it (see ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler import __version__
from reconciler.cli import (
    apply_cmd,
    doctor_cmd,
    emulator_cmd,
    init_cmd,
    plan_cmd,
    resources_cmd,
    state_cmd,
    validate_cmd,
)
from reconciler.cli.context import CliContext
from reconciler.errors import ExitCode, ManifestError, ReconcilerError


def _print_error(error: ReconcilerError) -> None:
    if isinstance(error, ManifestError) and error.diagnostics:
        for diagnostic in error.diagnostics:
            click.echo(str(diagnostic), err=True)
        click.echo(f"Error: {error.message}", err=True)
    else:
        click.echo(f"Error: {error}", err=True)
    if error.hint:
        click.echo(f"Hint: {error.hint}", err=True)


class ReconcilerGroup(click.Group):
    """A click group that turns errors into one clear line and Terraform's exit codes."""

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        kwargs["standalone_mode"] = False
        debug = "--debug" in sys.argv
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            # click's usage errors exit 2 by default, which would read as "changes".
            exc.show()
            sys.exit(ExitCode.ERROR)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(ExitCode.ERROR)
        except ReconcilerError as exc:
            _print_error(exc)
            sys.exit(ExitCode.ERROR)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug: one line, the traceback only with --debug
            if debug:
                raise
            click.echo(
                f"Internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                err=True,
            )
            sys.exit(ExitCode.ERROR)
        sys.exit(result if isinstance(result, int) else ExitCode.OK)


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option(
    "-C",
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RECONCILER_PROJECT_DIR",
    help="Project root (the directory holding reconciler.yaml). Default: searched upwards from here.",
)
@click.option(
    "--endpoint",
    envvar="RECONCILER_ENDPOINT",
    help="gemini (real API), emulator (embedded, no key needed), or a URL of a running emulator.",
)
@click.option(
    "--state", "state", envvar="RECONCILER_STATE", help="State file path or postgresql:// URL."
)
@click.option(
    "--no-color",
    is_flag=True,
    envvar="RECONCILER_NO_COLOR",
    help="Never colour output (NO_COLOR is respected too).",
)
@click.option("-v", "--verbose", count=True, help="Log for maintainers on stderr (-vv for more).")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    project_dir: Path | None,
    endpoint: str | None,
    state: str | None,
    no_color: bool,
    verbose: int,
    debug: bool,
) -> None:
    """GitOps for Gemini Batch API jobs: declare jobs in git, plan, apply, collect results."""
    import os

    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    color = not no_color and "NO_COLOR" not in os.environ
    ctx.obj = CliContext(project_dir, endpoint, state, color, verbose, debug)


for _command in (
    init_cmd.init,
    doctor_cmd.doctor,
    state_cmd.state,
    state_cmd.force_unlock,
    emulator_cmd.emulator,
    plan_cmd.plan,
    apply_cmd.apply,
    resources_cmd.status,
    resources_cmd.results,
    resources_cmd.destroy,
    resources_cmd.import_,
    validate_cmd.validate,
    validate_cmd.schema,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli()
