"""Resolving `endpoint: vertex`: project and region from reconciler.yaml or the environment,
the staging prefix, and which endpoints may receive credentials."""

from __future__ import annotations

import pytest

from reconciler.config import VertexSettings
from reconciler.errors import ConfigError
from reconciler.live.endpoint import EndpointKind, endpoint_kind, resolve_endpoint
from reconciler.live.vertex_target import vertex_target

STAGING = "gs://team-bucket/batch/"


def test_vertex_is_an_endpoint_kind_that_sends_no_api_key() -> None:
    assert endpoint_kind(" Vertex ") is EndpointKind.VERTEX
    resolved = resolve_endpoint(
        "vertex", api_version="v1", environ={"GEMINI_API_KEY": "real-secret"}
    )
    assert resolved.kind is EndpointKind.VERTEX and resolved.api_key == ""


def test_project_and_region_come_from_the_settings_before_the_environment() -> None:
    settings = VertexSettings(project="from-yaml", staging=STAGING)
    environ = {"GOOGLE_CLOUD_PROJECT": "from-env", "GOOGLE_CLOUD_LOCATION": "europe-west4"}

    target = vertex_target(settings, environ)

    assert (target.project, target.location) == ("from-yaml", "europe-west4")
    assert (target.staging, target.bucket, target.prefix) == (
        "gs://team-bucket/batch",
        "team-bucket",
        "batch/",
    )
    assert target.base_url is None and target.storage_url is None and not target.embedded


def test_missing_project_region_and_staging_are_named_with_where_to_set_them() -> None:
    with pytest.raises(ConfigError) as missing:
        vertex_target(VertexSettings(), {})

    message = str(missing.value)
    assert "GOOGLE_CLOUD_PROJECT" in message and "GOOGLE_CLOUD_LOCATION" in message
    assert "vertex.staging" in message


def test_a_staging_location_that_is_not_gs_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError):
        VertexSettings(staging="s3://bucket/prefix")


def test_an_emulator_base_url_reads_storage_from_the_environment_and_embedded_starts_both() -> None:
    settings = VertexSettings(
        project="p", location="l", staging=STAGING, base_url="http://127.0.0.1:9/"
    )
    target = vertex_target(settings, {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:8"})
    assert (target.base_url, target.storage_url) == ("http://127.0.0.1:9", "http://127.0.0.1:8")

    embedded = vertex_target(settings.model_copy(update={"base_url": "emulator"}), {})
    assert embedded.embedded and embedded.base_url is None


def test_a_base_url_that_is_neither_emulator_nor_http_is_refused() -> None:
    settings = VertexSettings(project="p", location="l", staging=STAGING, base_url="ftp://x")
    with pytest.raises(ConfigError, match=r"vertex\.base_url"):
        vertex_target(settings, {})


def test_a_bigquery_emulator_is_named_only_next_to_an_emulated_vertex() -> None:
    google = VertexSettings(project="p", location="l", staging=STAGING)
    emulated = google.model_copy(update={"base_url": "http://127.0.0.1:9"})
    environ = {"BIGQUERY_EMULATOR_HOST": "127.0.0.1:7"}

    assert vertex_target(google, environ).bigquery_url is None  # Google's, with ADC
    assert vertex_target(emulated, environ).bigquery_url == "http://127.0.0.1:7"
    named = emulated.model_copy(update={"bigquery_url": "http://127.0.0.1:6/"})
    assert vertex_target(named, environ).bigquery_url == "http://127.0.0.1:6"


def test_an_emulated_vertex_without_a_bigquery_emulator_never_reaches_google() -> None:
    from reconciler.live.vertex_bigquery import BigQuery

    with pytest.raises(ConfigError, match=r"vertex\.bigquery_url"):
        BigQuery(None, beside_emulator=True).table("bq://my-project.evals.prompts")


# The SDK sends Application Default Credentials to https://<location>-aiplatform.googleapis.com/:
# each of these would move that host elsewhere (or the path of every call).
HOSTILE_LOCATIONS = [
    "evil.example/x?",
    "evil.example#",
    "user@evil.example/",
    "us-central1.evil.example",
    "us-central1:443",
    "US-CENTRAL1",
]
HOSTILE_PROJECTS = ["a/../../b", "p?x=1", "p#f", "p/locations/other"]


@pytest.mark.parametrize("location", HOSTILE_LOCATIONS)
def test_a_location_that_would_change_the_credentials_host_is_refused_in_the_file(
    location: str,
) -> None:
    with pytest.raises(ValueError, match="location"):
        VertexSettings(project="p", location=location, staging=STAGING)


@pytest.mark.parametrize("project", HOSTILE_PROJECTS)
def test_a_project_that_would_change_the_path_is_refused_in_the_file(project: str) -> None:
    with pytest.raises(ValueError, match="project"):
        VertexSettings(project=project, location="us-central1", staging=STAGING)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GOOGLE_CLOUD_LOCATION", v) for v in HOSTILE_LOCATIONS]
    + [("GOOGLE_CLOUD_PROJECT", v) for v in HOSTILE_PROJECTS],
)
def test_a_hostile_project_or_location_from_the_environment_is_refused(
    variable: str, value: str
) -> None:
    environ = {"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_LOCATION": "us-central1", variable: value}
    with pytest.raises(ConfigError, match=variable) as refused:
        vertex_target(VertexSettings(staging=STAGING), environ)
    assert refused.value.hint is not None


@pytest.mark.parametrize(
    ("project", "location"),
    [("my-project-123", "us-central1"), ("example.com:my-project", "global"), ("123456", "eu")],
)
def test_real_project_ids_and_regions_are_taken(project: str, location: str) -> None:
    target = vertex_target(VertexSettings(project=project, location=location, staging=STAGING), {})
    assert (target.project, target.location) == (project, location)
