"""Open the state backend a project names; the only module that knows every implementation.

It sits above the implementations (local, postgres), which import only the protocol in
`reconciler.state.backend`, never this registry, so adding a backend touches one place.
"""

from __future__ import annotations

import random
import re
import time

from reconciler.clock import Clock, SystemClock
from reconciler.config import Project
from reconciler.errors import ConfigError
from reconciler.state.backend import LineageFactory, Sleep, StateBackend, new_lineage
from reconciler.state.local import LocalBackend


def is_postgres_url(setting: str) -> bool:
    return setting.startswith(("postgresql://", "postgres://"))


def open_backend(
    project: Project,
    *,
    clock: Clock | None = None,
    lineage_factory: LineageFactory = new_lineage,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
) -> StateBackend:
    """The backend `project.config.state` names: a path (local JSON file, relative to the
    project root) or a `postgresql://` URL (PostgreSQL; `?workspace=` picks the row, else the
    project id does). Either refuses a state that belongs to another project id.

    Raises:
        ConfigError: the setting is a URL of an unsupported scheme, or a PostgreSQL URL without
            a workspace in a project without an id.
    """
    setting = project.config.state
    clock = clock or SystemClock()
    rng = rng or random.Random()
    if is_postgres_url(setting):
        # Imported only when asked for: psycopg is an optional extra (`gemini-batch-reconciler[postgres]`).
        from reconciler.state.postgres import PostgresBackend

        return PostgresBackend(
            setting,
            clock=clock,
            lineage_factory=lineage_factory,
            sleep=sleep,
            rng=rng,
            project_id=project.config.project,
        )
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", setting):
        scheme = setting.split("://", 1)[0]
        raise ConfigError(
            f"unsupported state backend `{scheme}://`: use a file path or a postgresql:// URL"
        )
    return LocalBackend(
        project.path(setting),
        clock=clock,
        lineage_factory=lineage_factory,
        sleep=sleep,
        rng=rng,
        project_id=project.config.project,
    )
