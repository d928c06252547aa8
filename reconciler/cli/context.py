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

    def project(self) -> Project:
        if self._project is None:
            from reconciler.config import load_project

            self._project = load_project(
                self.project_dir, overrides={"endpoint": self.endpoint, "state": self.state}
            )
        return self._project
