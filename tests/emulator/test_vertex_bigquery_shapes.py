"""The Vertex emulator's BigQuery shapes, without a server: create requests with bq://
sources and destinations as stored and reported, and a source row answered as a result row."""

from __future__ import annotations

import pytest

from reconciler.emulator.plumbing import Reject
from reconciler.emulator.routes_vertex import _check_create, job_json
from reconciler.emulator.vertex_jobs import _answer, _cell
from reconciler.emulator.vertex_store import VertexJob

SOURCE = "bq://tables-project.evals.prompts"
TABLE = "bq://tables-project.evals.answers"


def _create(input_config: dict[str, object], output_config: dict[str, object]) -> dict[str, object]:
    _, stored = _check_create(
        {
            "displayName": "eval",
            "model": "publishers/google/models/gemini-2.5-flash",
            "inputConfig": input_config,
            "outputConfig": output_config,
        },
        lambda model: True,
    )
    return stored


def _job(body: dict[str, object], output_dir: str | None) -> VertexJob:
    return VertexJob(
        "1", "projects/p/locations/l", "eval", "publishers/google/models/gemini-2.5-flash",
        body, 0.0, 1.0, 0.0, None, "JOB_STATE_SUCCEEDED", 1.0, 2, 0, output_dir, None, 0.0,
    )  # fmt: skip


def test_a_bigquery_source_and_destination_are_stored_as_the_sdk_sends_them() -> None:
    stored = _create(
        {"instancesFormat": "bigquery", "bigquerySource": {"inputUri": SOURCE}},
        {"predictionsFormat": "bigquery", "bigqueryDestination": {"outputUri": TABLE}},
    )

    assert stored["inputConfig"] == {
        "instancesFormat": "bigquery",
        "bigquerySource": {"inputUri": SOURCE},
    }
    assert stored["outputConfig"] == {
        "predictionsFormat": "bigquery",
        "bigqueryDestination": {"outputUri": TABLE},
    }


def test_a_job_that_wrote_a_table_reports_its_dataset_and_table() -> None:
    body = _create(
        {"gcsSource": {"uris": ["gs://b/in.jsonl"]}}, {"bigqueryDestination": {"outputUri": TABLE}}
    )

    shown = job_json(_job(body, TABLE), now=2.0)

    assert shown["outputInfo"] == {
        "bigqueryOutputDataset": "bq://tables-project.evals",
        "bigqueryOutputTable": "answers",
    }


@pytest.mark.parametrize(
    ("input_config", "output_config", "field"),
    [
        ({"bigquerySource": {"inputUri": "bq://p.only-two"}}, {"bigqueryDestination": {"outputUri": TABLE}}, "inputConfig.bigquerySource.inputUri"),
        ({"bigquerySource": {"inputUri": SOURCE}}, {"bigqueryDestination": {"outputUri": "gs://b/x"}}, "outputConfig.bigqueryDestination.outputUri"),
        ({"bigquerySource": {"inputUri": SOURCE}, "gcsSource": {"uris": ["gs://b/i"]}}, {"bigqueryDestination": {"outputUri": TABLE}}, "inputConfig"),
    ],
)  # fmt: skip
def test_malformed_or_doubled_bigquery_configs_are_refused(
    input_config: dict[str, object], output_config: dict[str, object], field: str
) -> None:
    with pytest.raises(Reject) as refused:
        _create(input_config, output_config)

    assert field in bytes(refused.value.response.body).decode()


def test_a_source_row_is_answered_with_its_columns_passed_through() -> None:
    job = _job({}, None)
    row = {"key": "k1", "request": '{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'}

    line = _answer(job, row, lambda uri: False, end=1.0)

    assert line["key"] == "k1" and line["request"] == row["request"]
    assert line["status"] == "" and line["response"]["candidates"]
    assert "processed_time" in line


def test_a_row_without_a_json_request_fails_alone() -> None:
    line = _answer(_job({}, None), {"key": "k1", "request": "not json"}, lambda uri: False, 1.0)

    assert "request" in line["status"] and "response" not in line


def test_passed_through_values_fit_their_columns() -> None:
    assert _cell("STRING", 7) == "7"
    assert _cell("STRING", {"a": 1}) == '{"a": 1}'
    assert _cell("JSON", {"a": 1}) == {"a": 1}
    assert _cell("TIMESTAMP", None) is None
