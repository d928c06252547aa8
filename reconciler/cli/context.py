"""CliContext: the global options every command receives, and the project they name; with them
the options and words every command shares (`format_option`, the Ctrl-C exit code and line).

It sits at the bottom of the CLI package: `main` builds it, commands read it, and it imports
no other CLI module, so no command needs to import `main`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # config builds pydantic models: `--help` must not pay for them
    from reconciler.config import Project

INTERRUPTED = 130
"""The exit code of a run stopped by Ctrl-C (SIGINT), as shells report it."""

INTERRUPTED_LINE = "interrupted: nothing was changed at the service"
"""What Ctrl-C before apply's executor runs (loading, planning, a prompt, a read-only command)
prints: apply's own run (`shared.execute`) says instead which jobs keep running."""


@dataclass
class CliContext:
    """What every command receives: the global options, and the project once loaded."""

    project_dir: Path | None
    endpoint: str | None
    state: str | None
    color: bool
    verbose: int
    debug: bool
    _project: Project | None = None

    def project(self, *, required: bool = True) -> Project:
        """The project the options name.

        Raises:
            ConfigError: `required` and no reconciler.yaml is found, checked before anything
                else happens: outside a project no command may reach the real API (the
                default endpoint) or leave state or lock files behind.
        """
        from reconciler.config import PROJECT_FILE, load_project
        from reconciler.errors import ConfigError

        if self._project is None:
            self._project = load_project(
                self.project_dir, overrides={"endpoint": self.endpoint, "state": self.state}
            )
        if required and self._project.config_path is None:
            where = self._project.root
            raise ConfigError(
                f"no {PROJECT_FILE} found in {where}"
                + ("" if self.project_dir is not None else " or any parent"),
                hint="run `reconciler init` to start a project here, or pass -C <project dir>",
            )
        return self._project


def format_option(
    *extra: str, help: str | None = None
) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """The one `--format` option of every command: `text` (the default) and `json`, plus the
    `extra` formats a command also writes (plan's `markdown`); the value arrives as
    `output_format`. It lives here, not in `shared`, because `validate` and `cost` must not
    import what `shared` does."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json", *extra]),
        default="text",
        show_default=True,
        help=help,
    )
