"""Where `endpoint: vertex` runs: project, region, staging prefix, and which credentials go there.

Pure: reads only the settings and the environment mapping it is given; imports no SDK.

Credentials (DESIGN §7 for Vertex). Google's Vertex hosts get Application Default Credentials,
which the SDK finds itself (`gcloud auth application-default login`, the metadata server, or a
service-account key file named by GOOGLE_APPLICATION_CREDENTIALS); reconciler never reads,
stores or logs them. Any other base URL (`vertex.base_url`, for emulators) gets a fixed
placeholder token instead: a URL from `reconciler.yaml` may come from a pull request, so real
credentials never go there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.config import VERTEX_LOCATION_PATTERN, VERTEX_PROJECT_PATTERN, VertexSettings
from reconciler.errors import ConfigError
from reconciler.live.endpoint import is_http_url

PROJECT_VARIABLE = "GOOGLE_CLOUD_PROJECT"
LOCATION_VARIABLE = "GOOGLE_CLOUD_LOCATION"
STORAGE_VARIABLE = "STORAGE_EMULATOR_HOST"
BIGQUERY_VARIABLE = "BIGQUERY_EMULATOR_HOST"
EMBEDDED = "emulator"
"""`vertex.base_url: emulator`: the embedded emulator, with an embedded Cloud Storage emulator."""
VERTEX_API_VERSION = "v1"
"""Vertex's GA REST version (the SDK's default is v1beta1)."""


@dataclass(frozen=True, slots=True)
class VertexTarget:
    """A resolved Vertex endpoint."""

    project: str
    location: str
    staging: str
    """`gs://bucket/prefix`, without a trailing `/`."""
    base_url: str | None
    """None: Google's regional host, with ADC. Else an emulator (placeholder credentials)."""
    storage_url: str | None
    """Cloud Storage endpoint; None: Google's (or STORAGE_EMULATOR_HOST, which the client reads)."""
    bigquery_url: str | None = None
    """BigQuery REST endpoint; None: Google's, with Application Default Credentials."""
    embedded: bool = False
    """Start the embedded emulator and Cloud Storage emulator for the adapter's lifetime."""

    @property
    def bucket(self) -> str:
        return self.staging.removeprefix("gs://").partition("/")[0]

    @property
    def prefix(self) -> str:
        """The staging prefix inside the bucket, `` or `a/b/` (with its trailing `/`)."""
        rest = self.staging.removeprefix("gs://").partition("/")[2].strip("/")
        return f"{rest}/" if rest else ""

    @property
    def identity(self) -> str:
        """The project and region jobs live in: part of what a recorded job is bound to."""
        return f"{self.project}/{self.location}"


def vertex_target(settings: VertexSettings, environ: Mapping[str, str]) -> VertexTarget:
    """Resolve `vertex:` from reconciler.yaml and the environment.

    Raises:
        ConfigError: no project, region or staging prefix, naming where each can be set.
    """
    project = (settings.project or environ.get(PROJECT_VARIABLE, "")).strip()
    location = (settings.location or environ.get(LOCATION_VARIABLE, "")).strip()
    missing = [
        f"`vertex.{name}` (or {variable})"
        for name, value, variable in (
            ("project", project, PROJECT_VARIABLE),
            ("location", location, LOCATION_VARIABLE),
        )
        if not value
    ]
    if settings.staging is None:
        missing.append("`vertex.staging` (a gs://bucket/prefix for inputs and predictions)")
    if missing:
        raise ConfigError(
            f"`endpoint: vertex` needs {', '.join(missing)}",
            hint="e.g. vertex: {project: my-project, location: us-central1, "
            "staging: gs://my-bucket/reconciler}",
        )
    for name, value, variable, pattern in (
        ("project", project, PROJECT_VARIABLE, VERTEX_PROJECT_PATTERN),
        ("location", location, LOCATION_VARIABLE, VERTEX_LOCATION_PATTERN),
    ):
        # The environment is checked as the file is: the location becomes part of the host
        # the credentials go to.
        if not re.fullmatch(pattern, value):
            raise ConfigError(
                f"`vertex.{name}` (or {variable}) {value!r} is not a Google Cloud {name}",
                hint="e.g. vertex: {project: my-project, location: us-central1}",
            )
    assert settings.staging is not None
    base_url = (settings.base_url or "").strip().rstrip("/") or None
    embedded = base_url is not None and base_url.lower() == EMBEDDED
    if base_url is not None and not embedded and not is_http_url(base_url):
        raise ConfigError(
            f"setting `vertex.base_url`: {base_url!r} is not `emulator` or an http(s) URL with a "
            "host (and a port from 0 to 65535, if any)"
        )
    storage = settings.storage_url or (environ.get(STORAGE_VARIABLE) if base_url else None)
    # Like Cloud Storage: an emulator only next to an emulated Vertex, so real credentials
    # never go to a URL named in reconciler.yaml alone.
    bigquery = settings.bigquery_url or (environ.get(BIGQUERY_VARIABLE) if base_url else None)
    bigquery = (bigquery or "").strip().rstrip("/")
    if bigquery and "://" not in bigquery:
        bigquery = f"http://{bigquery}"
    return VertexTarget(
        project=project,
        location=location,
        staging=settings.staging.rstrip("/"),
        base_url=None if embedded else base_url,
        storage_url=(storage or "").strip().rstrip("/") or None,
        bigquery_url=bigquery or None,
        embedded=embedded,
    )
