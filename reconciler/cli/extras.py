"""The optional extras a project needs (gs:// outputs, a PostgreSQL state), checked up front.

Without this, a missing `google-cloud-storage` is found only when apply collects results from a
job that has already run and been paid for. `validate`, `plan` and `doctor` ask here first and
name the install command.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler import DISTRIBUTION
from reconciler.config import ProjectConfig
from reconciler.errors import ConfigError
from reconciler.live.gcs import is_gcs
from reconciler.manifests.desired import DesiredResource
from reconciler.state.registry import is_postgres_url


@dataclass(frozen=True, slots=True)
class Need:
    """One use of an extra: what needs it, and what provides it."""

    extra: str
    """The extra's name in `pip install 'gemini-batch-reconciler[EXTRA]'`."""
    module: str
    """The module whose presence means the extra is installed."""
    package: str
    """The distribution the extra brings, as users know it."""
    needed_for: str
    """What in the project needs it, for the message (`output gs://b/p of eval`)."""
    location: str | None = None
    """The gs:// output that needs it (for the gcs extra)."""

    @property
    def install(self) -> str:
        return f"pip install '{DISTRIBUTION}[{self.extra}]'"


def needs(config: ProjectConfig, resources: Iterable[DesiredResource]) -> list[Need]:
    """Every use of an optional extra by the project's state and its manifests' outputs."""
    found: list[Need] = []
    if is_postgres_url(config.state):
        found.append(Need("postgres", "psycopg", "psycopg", "the PostgreSQL state"))
    for resource in sorted(resources, key=lambda r: r.name):
        output = resource.manifest.spec.output
        if is_gcs(output):
            found.append(
                Need(
                    "gcs",
                    "google.cloud.storage",
                    "google-cloud-storage",
                    f"output {output} of {resource.name}",
                    output,
                )
            )
    return found


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (a None in sys.modules means no)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or was blocked
        return False


def require_extras(
    config: ProjectConfig,
    resources: Iterable[DesiredResource],
    *,
    is_installed: Callable[[str], bool] = installed,
) -> None:
    """Fail before any service call when an extra the project needs is not installed.

    Raises:
        ConfigError: naming the first use of a missing extra, with the install command.
    """
    for need in needs(config, resources):
        if not is_installed(need.module):
            raise ConfigError(f"{need.needed_for} needs {need.package}", hint=need.install)
