"""Building the SDK client and the adapter for an endpoint, and starting the embedded emulator."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

import httpx2
from google import genai
from google.genai import types

from reconciler.clock import Clock
from reconciler.live.adapter import GeminiAdapter
from reconciler.live.embedded import developer_endpoint
from reconciler.live.endpoint import Endpoint, EndpointKind, endpoint_kind
from reconciler.live.http import shared_ssl_context, wide_read_client
from reconciler.live.service import BatchService
from reconciler.live.settings import AdapterSettings

if TYPE_CHECKING:
    from reconciler.config import Project

logger = logging.getLogger(__name__)


def build_client(
    endpoint: Endpoint, settings: AdapterSettings, *, http: httpx2.AsyncClient | None = None
) -> genai.Client:
    """A Developer-API client for `endpoint` that makes one attempt per call, with our timeout.

    The adapter retries every call itself (retry.py): on its clock, honouring `RetryInfo`, and
    on dropped connections too, which the SDK's options leave out. SDK retries underneath would
    multiply the attempts and wait on real time.

    `http` becomes the SDK's async HTTP client (its public `HttpOptions.httpx_async_client`);
    the SDK does not close a client it was given, so its owner does.
    """
    retry = types.HttpRetryOptions(attempts=1)
    tls = shared_ssl_context()  # else the SDK builds two TLS contexts per client
    options = types.HttpOptions(
        client_args={"verify": tls},
        async_client_args={"verify": tls, "ssl": tls},
        api_version=endpoint.api_version,
        # The SDK takes milliseconds and also sends them as X-Server-Timeout (protocol §1).
        timeout=int(settings.request_timeout * 1000),
        retry_options=retry,
        httpx_async_client=http,
    )
    if endpoint.base_url is not None:
        options.base_url = endpoint.base_url
    _build_job_model()
    # vertexai=False pins Developer-API mode even if GOOGLE_GENAI_USE_VERTEXAI is set.
    return genai.Client(api_key=endpoint.api_key, vertexai=False, http_options=options)


def _build_job_model() -> None:
    """Build the SDK's `BatchJob` model now, before any response needs it.

    The SDK's types are built on first use (`defer_build`). A job listing answered first builds
    `ListBatchJobsResponse` with `BatchJob` and its nested types spelled out inline, and then,
    walking the page, `BatchJob` again on its own: ~55 ms of CPU twice (apply's plan lists
    before anything is created). With `BatchJob` built first the listing reuses it (~4 ms).
    Built once per process; a later call costs nothing."""
    types.BatchJob.model_rebuild(raise_errors=False)


def connect(
    endpoint: Endpoint,
    *,
    clock: Clock,
    settings: AdapterSettings | None = None,
    rng: random.Random | None = None,
) -> GeminiAdapter:
    """An adapter for `endpoint` over a new SDK client and HTTP pool (http.py), which it owns:
    close it with `aclose()`. Its API key is never shown in an error."""
    settings = settings or AdapterSettings()
    http = wide_read_client()
    return GeminiAdapter(
        build_client(endpoint, settings, http=http),
        clock=clock,
        settings=settings,
        secrets=(endpoint.api_key,),
        http=http,
        rng=rng,
    )


@contextlib.asynccontextmanager
async def open_adapter(
    project: Project,
    *,
    clock: Clock,
    settings: AdapterSettings | None = None,
    environ: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[BatchService]:
    """The adapter for `project.config.endpoint`, open for the `async with` block.

    `emulator` starts the embedded emulator in-process for the block's duration, keeping its
    data under `<project root>/<emulator.data_dir>` so jobs outlive one command. `rng` is the
    source of retry jitter (a new generator when not given).

    Raises:
        ConfigError: the endpoint setting is invalid, or the Gemini API has no key.
    """
    config = project.config
    environ = os.environ if environ is None else environ
    with contextlib.ExitStack() as stack:
        if endpoint_kind(config.endpoint) is EndpointKind.VERTEX:
            from reconciler.live.vertex_client import open_vertex

            vertex = open_vertex(
                project, stack, clock=clock, settings=settings, environ=environ, rng=rng
            )
            try:
                yield vertex
            finally:
                await vertex.aclose()
            return
        endpoint = developer_endpoint(project, stack, environ)
        logger.debug("batch service endpoint: %s", endpoint)
        adapter = connect(endpoint, clock=clock, settings=settings, rng=rng)
        try:
            yield adapter
        finally:
            await adapter.aclose()
