"""Vertex AI batch prediction's limits (manifests/vertex_rules.LIMITS), found by `validate` and
by the look-up of remote sources before `plan`, each refusal naming the manifest, the limit and
where Google publishes it; and the default shard sizes capped at them on Vertex only."""

from __future__ import annotations

import json

import pytest

from reconciler.apply.sources import shard_max_bytes
from reconciler.config import Project, load_project
from reconciler.errors import Diagnostic
from reconciler.manifests.loader import load, resource_spec_hash
from reconciler.manifests.remote import RemoteObject, RemoteTable, with_remote_sources
from reconciler.manifests.vertex_rules import (
    BATCH_LIMITS_SOURCE,
    DESTINATION_SOURCE,
    LIMITS,
    MAX_INPUT_BYTES,
    MAX_REQUESTS,
)

VERTEX = "endpoint: vertex\nvertex:\n  project: demo\n  location: us-central1\n"
TABLE = "bq://tables-project.evals.answers"


@pytest.fixture(autouse=True)
def _no_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_LOCATION", "BIGQUERY_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)


def _write(
    project: Project,
    settings: str,
    *,
    source: str = "file: data/in.jsonl",
    output: str = "results/out.jsonl",
    extra: str = "",
    lines: int = 3,
) -> Project:
    (project.root / "reconciler.yaml").write_text(settings)
    (project.root / "data/in.jsonl").write_text(
        "".join(
            json.dumps({"key": f"k{i}", "request": {"contents": [{"parts": [{"text": "hi"}]}]}})
            + "\n"
            for i in range(lines)
        )
    )
    (project.root / "manifests/job.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: job\nspec:\n"
        f"  model: gemini-2.5-flash\n  source:\n    {source}\n  output: {output}\n{extra}"
    )
    return load_project(project.root, environ={})


def _refusals(project: Project) -> list[Diagnostic]:
    result = load(project)
    assert result.desired is None, "the manifest should have been refused"
    return list(result.diagnostics)


def test_the_limits_table_cites_a_source_for_every_figure() -> None:
    assert (MAX_REQUESTS.value, MAX_INPUT_BYTES.value) == (200_000, 1_000_000_000)
    assert all(limit.source.startswith("https://cloud.google.com/") for limit in LIMITS)


@pytest.mark.parametrize(
    ("shards", "field", "words"),
    [
        ("max_requests: 250000", "max_requests", "200,000 requests in one batch job"),
        ("max_bytes: 2GB", "max_bytes", "1,000,000,000 bytes in one Cloud Storage input file"),
    ],
)
def test_a_shard_size_past_a_vertex_limit_is_refused_naming_the_line_limit_and_source(
    tmp_project: Project, shards: str, field: str, words: str
) -> None:
    project = _write(tmp_project, VERTEX, extra=f"  shards:\n    {shards}\n")

    [refusal] = _refusals(project)

    assert f"`shards.{field}`" in refusal.message and words in refusal.message
    assert BATCH_LIMITS_SOURCE in refusal.message
    assert refusal.location is not None
    assert str(refusal.location).startswith("manifests/job.yaml:")
    assert refusal.location.line == 11  # the shard size's own line


@pytest.mark.parametrize("shards", ["max_requests: 250000", "max_bytes: 2GB"])
def test_the_same_shard_sizes_are_taken_on_the_developer_api(
    tmp_project: Project, shards: str
) -> None:
    project = _write(tmp_project, "endpoint: emulator\n", extra=f"  shards:\n    {shards}\n")
    assert load(project).desired is not None


def test_default_shard_sizes_are_capped_at_vertex_limits_so_plan_splits_a_large_input(
    tmp_project: Project,
) -> None:
    on_vertex = load(_write(tmp_project, VERTEX)).desired
    assert on_vertex is not None
    vertex = on_vertex.resources["job"]
    developer = load(_write(tmp_project, "endpoint: emulator\n")).desired
    assert developer is not None
    gemini = developer.resources["job"]

    # 1.05 GB in one input: one job under the default 1 GiB, two under Vertex's 1 GB.
    assert gemini.shards.jobs_for(1000, 1_050_000_000) == 1
    assert vertex.shards.jobs_for(1000, 1_050_000_000) == 2
    assert vertex.shards.max_bytes_value() == MAX_INPUT_BYTES.value
    # The manifest stays as written: its hashes and in-place fields do not depend on the
    # endpoint, so switching endpoints shows no shard change.
    assert vertex.manifest.spec.shards == gemini.manifest.spec.shards
    assert vertex.in_place_fields()["shards"] == gemini.in_place_fields()["shards"]
    # apply closes a shard's file by the same size the plan counted jobs by.
    assert (shard_max_bytes(vertex), shard_max_bytes(gemini)) == (10**9, 2**30)


def test_sizes_a_vertex_manifest_sets_within_the_limits_are_kept(tmp_project: Project) -> None:
    extra = "  shards:\n    max_requests: 500\n    max_bytes: 10MB\n"
    desired = load(_write(tmp_project, VERTEX, extra=extra)).desired
    assert desired is not None
    shards = desired.resources["job"].shards
    assert (shards.max_requests, shards.max_bytes_value()) == (500, 10_000_000)


def test_a_bigquery_output_refuses_an_input_that_needs_several_jobs(
    tmp_project: Project,
) -> None:
    extra = "  shards:\n    max_requests: 2\n"
    project = _write(tmp_project, VERTEX, output=TABLE, extra=extra)

    [refusal] = _refusals(project)

    assert "needs 2" in refusal.message and "refuses one that exists" in refusal.message
    assert DESTINATION_SOURCE in refusal.message
    assert refusal.location is not None and refusal.location.line == 9  # `output:`


def test_a_bigquery_output_takes_an_input_of_one_job(tmp_project: Project) -> None:
    project = _write(tmp_project, VERTEX, output=TABLE)
    assert load(project).desired is not None


@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("bigquery: bq://tables-project.evals.prompts", "results/out.jsonl"),
        ("file: data/in.jsonl", TABLE),
    ],
)
def test_bigquery_is_refused_in_the_global_location(
    tmp_project: Project, source: str, output: str
) -> None:
    settings = VERTEX.replace("us-central1", "global")
    [refusal] = _refusals(_write(tmp_project, settings, source=source, output=output))
    assert "location `global` takes no BigQuery table" in refusal.message


def test_the_global_location_from_the_environment_is_checked_too(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "global")
    settings = "endpoint: vertex\nvertex:\n  project: demo\n"
    [refusal] = _refusals(_write(tmp_project, settings, output=TABLE))
    assert "`global`" in refusal.message


EMBEDDED = VERTEX + "  staging: gs://bucket/reconciler\n  base_url: emulator\n"


@pytest.mark.parametrize(
    ("source", "output", "line"),
    [
        ("bigquery: bq://tables-project.evals.prompts", "results/out.jsonl", 8),
        ("file: data/in.jsonl", TABLE, 9),
    ],
)
def test_an_emulated_vertex_without_a_bigquery_emulator_refuses_tables_at_validate(
    tmp_project: Project, source: str, output: str, line: int
) -> None:
    [refusal] = _refusals(_write(tmp_project, EMBEDDED, source=source, output=output))

    assert "need a BigQuery emulator" in refusal.message
    assert refusal.hint is not None and "vertex.bigquery_url" in refusal.hint
    assert refusal.location is not None and refusal.location.line == line


def test_an_emulated_vertex_with_a_bigquery_emulator_takes_tables(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = EMBEDDED + "  bigquery_url: http://127.0.0.1:9050\n"
    assert load(_write(tmp_project, named, output=TABLE)).desired is not None
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "127.0.0.1:9050")
    assert load(_write(tmp_project, EMBEDDED, output=TABLE)).desired is not None


def test_a_remote_source_past_a_limit_is_refused_before_plan(tmp_project: Project) -> None:
    gcs = "gs://team-bucket/inputs/big.jsonl"
    table = "bq://tables-project.evals.prompts"
    for source, too_big, fits, words in (
        (
            f"gcs: {gcs}",
            RemoteObject(gcs, 1_000_000_001, 1, "crc", "md5"),
            RemoteObject(gcs, 1_000_000_000, 1, "crc", "md5"),
            "1,000,000,001 bytes",
        ),
        (
            f"bigquery: {table}",
            RemoteTable(table, "1", 200_001, 10, "e"),
            RemoteTable(table, "1", 200_000, 10, "e"),
            "200,001 rows",
        ),
    ):
        desired = load(_write(tmp_project, VERTEX, source=source)).desired
        assert desired is not None
        uri = too_big.uri

        kept, [refusal] = with_remote_sources(desired, {uri: too_big}, resource_spec_hash)
        assert "job" not in kept.resources
        assert words in refusal.message and BATCH_LIMITS_SOURCE in refusal.message
        assert refusal.location is not None

        taken, problems = with_remote_sources(desired, {uri: fits}, resource_spec_hash)
        assert problems == [] and "job" in taken.resources
