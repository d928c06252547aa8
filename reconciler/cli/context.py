"""CliContext: the global options every command receives, and the project they name.

It sits at the bottom of the CLI package: `main` builds it, commands read it, and it imports
no other CLI module, so no command needs to import `main`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config builds pydantic models: `--help` must not pay for them
    from reconciler.config import Project


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
