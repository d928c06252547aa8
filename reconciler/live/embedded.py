"""The embedded emulator for `endpoint: emulator`: started in-process for a command's duration.

Both ways of opening the service start it (client.py's `open_adapter`, rest_reads.py's
`open_reader`); its server stack is imported only here, when a project asks for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from reconciler.errors import ConfigError
from reconciler.live.endpoint import Endpoint, EndpointKind, endpoint_kind, resolve_endpoint

if TYPE_CHECKING:
    from reconciler.config import Project


def start_emulator(project: Project, stack: contextlib.ExitStack) -> str:
    """Start the emulator, stopped when `stack` closes, with its data under `<project
    root>/<emulator.data_dir>` so jobs outlive one command; its base URL.

    Raises:
        ConfigError: the data directory cannot be created.
    """
    from reconciler.emulator import running_emulator

    data_dir = project.path(project.config.emulator.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the emulator data directory {data_dir}: {exc}") from None
    emulator = stack.enter_context(
        running_emulator(data_dir, job_seconds=project.config.emulator.job_seconds)
    )
    return str(emulator.base_url)


def developer_endpoint(
    project: Project, stack: contextlib.ExitStack, environ: Mapping[str, str]
) -> Endpoint:
    """The Developer API endpoint `project` names, the embedded emulator started on `stack`
    first when it names `emulator` (both openers resolve it so).

    Raises:
        ConfigError: the endpoint setting is invalid, the Gemini API has no key, or the
            emulator's data directory cannot be created.
    """
    config = project.config
    emulator_url: str | None = None
    if endpoint_kind(config.endpoint) is EndpointKind.EMULATOR:
        emulator_url = start_emulator(project, stack)
    return resolve_endpoint(
        config.endpoint,
        api_version=config.api_version,
        environ=environ,
        emulator_base_url=emulator_url,
    )
