"""`source.bigquery` and bq:// outputs (Vertex only): the URI shape, where they are refused,
and how a table's metadata becomes the source digest the planner compares."""

from __future__ import annotations

import pytest

from reconciler.config import Project, load_project
from reconciler.manifests.bigquery_uri import parse_table, table_problem
from reconciler.manifests.loader import load, resource_spec_hash
from reconciler.manifests.remote import RemoteTable, remote_uris, with_remote_sources

SOURCE = "bq://my-project.evals.prompts"
OUTPUT = "bq://my-project.evals.answers"


@pytest.mark.parametrize(
    "uri",
    [
        "bq://my-project.evals.prompts",
        "bq://example.com:my-project.evals_2.prompts-v2",
        "bq://abcdef.D.T",
    ],
)
def test_well_formed_table_uris_parse_into_their_parts(uri: str) -> None:
    assert table_problem(uri) is None
    assert parse_table(uri).uri == uri


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("bq://my-project.evals", "got 2"),
        ("bq://my-project", "got 1"),
        ("bq://", "got 0"),
        ("bq://My_Project.evals.prompts", "project id"),
        ("bq://my-project.ev-als.prompts", "dataset"),
        ("bq://my-project.evals.pro mpts", "table"),
    ],
)
def test_malformed_table_uris_say_what_is_expected(uri: str, words: str) -> None:
    problem = table_problem(uri)
    assert problem is not None
    assert "bq://project.dataset.table" in problem and words in problem
    with pytest.raises(ValueError):
        parse_table(uri)


def _write(project: Project, endpoint: str, source: str, output: str, extra: str = "") -> Project:
    (project.root / "reconciler.yaml").write_text(f"endpoint: {endpoint}\n")
    (project.root / "data").mkdir(exist_ok=True)
    (project.root / "data/in.jsonl").write_text(
        '{"key": "a", "request": {"contents": [{"parts": [{"text": "hi"}]}]}}\n'
    )
    (project.root / "manifests/bq.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: bq\nspec:\n"
        f"  model: gemini-2.5-flash\n  source:\n    {source}\n  output: {output}\n{extra}"
    )
    return load_project(project.root, environ={})


def _messages(project: Project) -> list[str]:
    result = load(project)
    assert result.desired is None
    return [d.message for d in result.diagnostics]


def test_a_bigquery_source_and_output_are_refused_off_vertex_at_the_manifest(
    tmp_project: Project,
) -> None:
    project = _write(tmp_project, "emulator", f"bigquery: {SOURCE}", OUTPUT)

    messages = _messages(project)

    assert any("`source.bigquery` needs `endpoint: vertex`" in m for m in messages)
    assert any("BigQuery `output` needs `endpoint: vertex`" in m for m in messages)
    diagnostics = load(project).diagnostics
    assert all(
        d.location is not None and "manifests/bq.yaml" in str(d.location) for d in diagnostics
    )


def test_a_malformed_output_table_is_a_located_diagnostic(tmp_project: Project) -> None:
    project = _write(tmp_project, "vertex", "file: data/in.jsonl", "bq://my-project.answers")

    [message] = _messages(project)

    assert "bq://project.dataset.table" in message


def test_a_source_is_one_of_file_requests_gcs_or_bigquery(tmp_project: Project) -> None:
    project = _write(
        tmp_project, "vertex", f"bigquery: {SOURCE}\n    file: data/in.jsonl", "results/o.jsonl"
    )

    [message] = _messages(project)

    assert "exactly one of" in message and "bigquery" in message


def test_a_bigquery_output_cannot_retry_failed_requests_alone(tmp_project: Project) -> None:
    project = _write(
        tmp_project,
        "vertex",
        "file: data/in.jsonl",
        OUTPUT,
        "  policy:\n    retry_failed_requests: 1\n",
    )

    [message] = _messages(project)

    assert "retry_failed_requests" in message and "BigQuery" in message


def test_two_resources_may_not_write_one_table(tmp_project: Project) -> None:
    project = _write(tmp_project, "vertex", "file: data/in.jsonl", OUTPUT)
    (project.root / "manifests/other.yaml").write_text(
        (project.root / "manifests/bq.yaml").read_text().replace("name: bq", "name: other")
    )

    [message] = _messages(project)

    assert "also the output of `bq`" in message


def test_the_table_metadata_is_the_source_digest_and_a_change_changes_the_spec(
    tmp_project: Project,
) -> None:
    desired = load(_write(tmp_project, "vertex", f"bigquery: {SOURCE}", OUTPUT)).desired
    assert desired is not None and remote_uris(desired) == [SOURCE]

    v1 = RemoteTable(SOURCE, "1700000000000", 3, 120, '"e1"')
    more_rows = RemoteTable(SOURCE, "1700000000000", 4, 160, '"e2"')
    first, _ = with_remote_sources(desired, {SOURCE: v1}, resource_spec_hash)
    again, _ = with_remote_sources(desired, {SOURCE: v1}, resource_spec_hash)
    second, _ = with_remote_sources(desired, {SOURCE: more_rows}, resource_spec_hash)

    assert first.resources["bq"].spec_hash == again.resources["bq"].spec_hash
    assert second.resources["bq"].spec_hash != first.resources["bq"].spec_hash
    assert first.resources["bq"].source.bytes == 120


def test_a_missing_table_is_a_diagnostic_naming_the_table(tmp_project: Project) -> None:
    desired = load(_write(tmp_project, "vertex", f"bigquery: {SOURCE}", OUTPUT)).desired
    assert desired is not None

    resolved, problems = with_remote_sources(desired, {SOURCE: None}, resource_spec_hash)

    assert "bq" not in resolved.resources
    assert "source.bigquery" in problems[0].message and SOURCE in problems[0].message


def test_another_output_table_is_another_job_but_other_outputs_keep_their_spec_hash(
    tmp_project: Project,
) -> None:
    def spec_hash(output: str) -> str:
        desired = load(_write(tmp_project, "vertex", "file: data/in.jsonl", output)).desired
        assert desired is not None
        return desired.resources["bq"].spec_hash

    local, gcs = spec_hash("results/a.jsonl"), spec_hash("gs://bucket/out/")
    one, other = spec_hash(OUTPUT), spec_hash("bq://my-project.evals.answers_2")

    assert local == gcs  # copied there after the job: an in-place change
    assert len({local, one, other}) == 3
