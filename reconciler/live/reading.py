"""Opening the service for a plan's reads: `open_reader` (no google.genai for the Developer API).

`plan` only reads the service, so for a Developer API endpoint it gets a `RestReader`
(rest_reads.py) rather than the adapter, whose SDK client cost a tenth of a no-op plan at
10,000 resources to import and build; Vertex has no such path, so its adapter is opened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from reconciler.clock import Clock
from reconciler.live.embedded import developer_endpoint
from reconciler.live.endpoint import EndpointKind, endpoint_kind
from reconciler.live.http import wide_read_client
from reconciler.live.rest_reads import RestReader, ServiceReader
from reconciler.live.rest_route import developer_route
from reconciler.live.settings import AdapterSettings

if TYPE_CHECKING:
    from reconciler.config import Project


@contextlib.asynccontextmanager
async def open_reader(
    project: Project,
    *,
    clock: Clock,
    settings: AdapterSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[ServiceReader]:
    """A reader of `project.config.endpoint`, open for the `async with` block: `RestReader`
    for the Developer API (the embedded emulator started for `emulator`, as `open_adapter`
    does), the adapter itself for Vertex.

    Raises:
        ConfigError: the endpoint setting is invalid, or the Gemini API has no key.
    """
    config = project.config
    environ = os.environ if environ is None else environ
    if endpoint_kind(config.endpoint) is EndpointKind.VERTEX:
        from reconciler.live.client import open_adapter

        async with open_adapter(project, clock=clock, settings=settings, environ=environ) as vertex:
            yield vertex
        return
    with contextlib.ExitStack() as stack:
        endpoint = developer_endpoint(project, stack, environ)
        settings = settings or AdapterSettings()
        reader = RestReader(
            developer_route(endpoint, settings, environ),
            wide_read_client(),
            clock=clock,
            settings=settings,
            secrets=(endpoint.api_key,),
        )
        try:
            yield reader
        finally:
            await reader.aclose()
