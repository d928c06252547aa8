"""Opening a `VertexAdapter` for `endpoint: vertex`, and the embedded emulators it may need.

`vertex.base_url: emulator` starts, for the adapter's lifetime, the embedded emulator (which
serves Vertex's `batchPredictionJobs` routes) and a Cloud Storage emulator
(gcp-storage-emulator) holding the staging bucket, both keeping their data under the
project's emulator data directory so jobs and objects outlive one command.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx2
from google import genai
from google.genai import types

from reconciler.clock import Clock
from reconciler.errors import ConfigError
from reconciler.live.http import wide_read_client
from reconciler.live.settings import AdapterSettings
from reconciler.live.vertex import VertexAdapter
from reconciler.live.vertex_target import VERTEX_API_VERSION, VertexTarget, vertex_target

if TYPE_CHECKING:
    from reconciler.config import Project

logger = logging.getLogger(__name__)


def placeholder_credentials() -> Any:
    """Credentials for an emulator: a fixed token that never expires, so the SDK neither asks
    Google for one nor sends real ones (`AnonymousCredentials` has no token, and the SDK tries
    to refresh it)."""
    from google.oauth2.credentials import Credentials

    return Credentials(token="emulator")  # type: ignore[no-untyped-call]


def build_vertex_client(
    target: VertexTarget, settings: AdapterSettings, *, http: httpx2.AsyncClient | None = None
) -> genai.Client:
    """A Vertex-mode client making one attempt per call (the adapter retries, as client.py's)."""
    options = types.HttpOptions(
        api_version=VERTEX_API_VERSION,
        timeout=int(settings.request_timeout * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_async_client=http,
    )
    credentials = None
    if target.base_url is not None:
        options.base_url = target.base_url
        credentials = placeholder_credentials()
    # credentials=None: the SDK loads Application Default Credentials itself, when first needed.
    return genai.Client(
        vertexai=True,
        project=target.project,
        location=target.location,
        credentials=credentials,
        http_options=options,
    )


def open_vertex(
    project: Project,
    stack: contextlib.ExitStack,
    *,
    clock: Clock,
    settings: AdapterSettings | None,
    environ: Mapping[str, str],
    rng: random.Random | None,
) -> VertexAdapter:
    """The adapter for `endpoint: vertex`; embedded emulators are stopped by `stack`.

    Raises:
        ConfigError: project, region or staging is missing, or the embedded Cloud Storage
            emulator is not installed.
    """
    target = vertex_target(project.config.vertex, environ)
    if target.embedded:
        target = _start_embedded(project, target, stack)
    logger.debug("Vertex AI: project %s, region %s", target.project, target.location)
    settings = settings or AdapterSettings()
    http = wide_read_client()
    return VertexAdapter(
        build_vertex_client(target, settings, http=http),
        target,
        clock=clock,
        settings=settings,
        http=http,
        rng=rng,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_embedded(
    project: Project, target: VertexTarget, stack: contextlib.ExitStack
) -> VertexTarget:
    try:
        from gcp_storage_emulator.server import create_server
    except ImportError:
        raise ConfigError(
            "`vertex.base_url: emulator` needs a Cloud Storage emulator (gcp-storage-emulator)",
            hint="pip install gcp-storage-emulator",
        ) from None
    from reconciler.emulator import running_emulator

    data_dir = project.path(project.config.emulator.data_dir)
    storage_dir = data_dir / "storage"
    try:
        storage_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the emulator data directory {data_dir}: {exc}") from None
    port = _free_port()
    server = create_server(
        "127.0.0.1", port, default_bucket=target.bucket, data_dir=str(storage_dir)
    )
    server.start()
    stack.callback(server.stop)
    storage_url = f"http://127.0.0.1:{port}"
    emulator = stack.enter_context(
        running_emulator(
            data_dir,
            job_seconds=project.config.emulator.job_seconds,
            storage_url=storage_url,
            bigquery_url=target.bigquery_url,
        )
    )
    return VertexTarget(
        project=target.project,
        location=target.location,
        staging=target.staging,
        base_url=str(emulator.base_url),
        storage_url=storage_url,
        bigquery_url=target.bigquery_url,
    )
