"""The `reconciler` command: global options, error handling, and the subcommand registry.

Commands are thin: parse flags, build objects, call one function, print, exit. Only this package
wires backends, the live adapter, the clock and the console together. This module is the top of
the package: it names every command module and nothing imports it (see ARCHITECTURE.md).

Commands are imported lazily, by name, only when one is run: `apply` pulls in google.genai and
every apply stage, `emulator` the server stack, and none of that may slow down `--help` or
`validate` (pre-commit runs `validate` on every commit). `COMMANDS` keeps each command's short
help so that `--help` lists them all without importing one; a test keeps it equal to the real
commands' help.
"""

from __future__ import annotations

import gc
import importlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler.cli.context import INTERRUPTED, INTERRUPTED_LINE, CliContext
from reconciler.cli.single_dash import refuse_single_dash_flags
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


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a subcommand lives, and its short help for `--help` (so listing imports nothing)."""

    module: str
    attribute: str
    short_help: str


COMMANDS: dict[str, LazyCommand] = {
    "apply": LazyCommand(
        "reconciler.cli.apply_cmd",
        "apply",
        "Create, cancel and collect jobs until the service matches the manifests.",
    ),
    "cost": LazyCommand(
        "reconciler.cli.cost_cmd",
        "cost",
        "What the collected jobs cost: tokens their results reported, at batch price.",
    ),
    "destroy": LazyCommand(
        "reconciler.cli.resources_cmd",
        "destroy",
        "Cancel every managed running job and forget every resource.",
    ),
    "doctor": LazyCommand(
        "reconciler.cli.doctor_cmd",
        "doctor",
        "Check that this project is ready to run: the API key is set (never printed), the "
        "endpoint answers, each manifest's model supports batch, the quota in use (jobs "
        "running, Files storage), gs:// outputs are reachable, BigQuery source tables are "
        "readable and output datasets exist (Vertex), and the extras the outputs and the state "
        "need are installed.",
    ),
    "emulator": LazyCommand(
        "reconciler.cli.emulator_cmd",
        "emulator",
        "Local emulator of the Gemini Batch API (Files + Batches), for tests and offline demos.",
    ),
    "force-unlock": LazyCommand(
        "reconciler.cli.state_cmd",
        "force_unlock",
        "Break the state lock held under LOCK_ID (when its holder is stuck or gone).",
    ),
    "import": LazyCommand(
        "reconciler.cli.resources_cmd",
        "import_",
        "Adopt an existing service job (batches/...) as the current attempt of manifest NAME.",
    ),
    "init": LazyCommand(
        "reconciler.cli.init_cmd",
        "init",
        "Start a project here (or in -C DIR): reconciler.yaml, one example manifest and its "
        "input, and the .gitignore lines for reconciler's working files.",
    ),
    "plan": LazyCommand(
        "reconciler.cli.plan_cmd",
        "plan",
        "Show what apply would change and what it would cost.",
    ),
    "results": LazyCommand(
        "reconciler.cli.resources_cmd",
        "results",
        "Where a resource's results are, and how many succeeded and failed.",
    ),
    "schema": LazyCommand(
        "reconciler.cli.validate_cmd",
        "schema",
        "Print the JSON Schema of a BatchJob manifest (or, with --project, of reconciler.yaml).",
    ),
    "state": LazyCommand(
        "reconciler.cli.state_cmd",
        "state",
        "Inspect and edit the state (advanced: prefer `apply`).",
    ),
    "status": LazyCommand(
        "reconciler.cli.resources_cmd",
        "status",
        "Per resource: desired vs recorded vs live state, attempts, results and the next action.",
    ),
    "ui": LazyCommand(
        "reconciler.cli.ui_cmd",
        "ui",
        "Serve a read-only web view: resources, jobs, results and costs.",
    ),
    "validate": LazyCommand(
        "reconciler.cli.validate_cmd",
        "validate",
        "Check manifests and their JSONL inputs without calling the service.",
    ),
}
"""Every subcommand by name. A new command gets a row here (the test of this table fails until
its short help matches the command's docstring)."""


class ReconcilerGroup(click.Group):
    """A click group that turns errors into one clear line and Terraform's exit codes.

    Its subcommands come from `COMMANDS`, imported only when one is looked up by name.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        assert isinstance(command, click.Command), entry
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the stored short help: listing imports no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            entry = COMMANDS.get(name)
            # A placeholder command shortens the stored text exactly as click would the real one.
            command = (
                click.Command(name, help=entry.short_help)
                if entry is not None
                else self.commands[name]
            )
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        # A command builds large, long-lived object graphs (the SDK's types, thousands of
        # manifests, the state) and produces little cyclic garbage: with the default threshold
        # (a collection every 700 allocations, a full one every 70,000) the collector took a
        # fifth of loading 5,000 manifests.
        gc.set_threshold(50_000, 50, 100)
        kwargs["standalone_mode"] = False
        debug = "--debug" in sys.argv
        try:
            refuse_single_dash_flags(kwargs.get("args") or (args[0] if args else sys.argv[1:]))
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            # click's usage errors exit 2 by default, which would read as "changes".
            exc.show()
            sys.exit(ExitCode.ERROR)
        except (click.Abort, KeyboardInterrupt):
            # Ctrl-C anywhere before apply's executor runs (loading, planning, the prompt):
            # click turns it into Abort. Apply's own run says more (shared.execute).
            click.echo(INTERRUPTED_LINE, err=True)
            sys.exit(INTERRUPTED)
        except ReconcilerError as exc:
            _print_error(exc)
            sys.exit(ExitCode.ERROR)
        except Exception as exc:  # a bug: one line, the traceback only with --debug
            if debug:
                raise
            click.echo(
                f"Internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                err=True,
            )
            sys.exit(ExitCode.ERROR)
        sys.exit(result if isinstance(result, int) else ExitCode.OK)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, as click's own option prints it, reading the version only when asked."""
    if not value or ctx.resilient_parsing:
        return
    from reconciler import __version__

    click.echo(f"reconciler, version {__version__}")
    ctx.exit()


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_version,
    help="Show the version and exit.",
)
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
    help=(
        "gemini (real API), vertex (Vertex AI, see `vertex:` in reconciler.yaml), emulator "
        "(embedded, no key needed), or a URL of a running emulator."
    ),
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

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])
    color = not no_color and "NO_COLOR" not in os.environ
    ctx.obj = CliContext(project_dir, endpoint, state, color, verbose, debug)


class _RedactingFormatter(logging.Formatter):
    """Log lines without the user information or `key=` value of any URL in them: the HTTP
    client logs every request's URL (-vv), and an endpoint URL may carry `user:token@`."""

    _USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")
    _KEY = re.compile(r"(?i)([?&](?:key|api_key|access_token)=)[^&#\s\"']*")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return self._KEY.sub(r"\1***", self._USERINFO.sub(r"\1", text))


def main() -> None:
    """Console-script entry point."""
    try:
        cli()
    finally:
        # The process is about to exit (every command ends in SystemExit). The interpreter's
        # last collections would walk every object still alive (the SDK's types, our models,
        # the state): 0.2-0.3 s of CPU after an apply, with nothing to free that the exit does
        # not. Frozen objects are skipped; atexit handlers and stream flushes still run. Here,
        # not in `ReconcilerGroup.main`: tests call that in-process, many times.
        gc.freeze()
