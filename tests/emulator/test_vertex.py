"""Vertex AI batchPredictionJobs through the real SDK (`vertexai=True`), with only the base URL
and the credentials changed; inputs and predictions live in a real Cloud Storage emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from reconciler.emulator import EmulatorHandle, running_emulator
from tests.emulator.conftest import JOB_SECONDS, wait_for_end
from tests.fixtures.gcs import BUCKET, gcs, storage_client, vertex_sdk

__all__ = ["gcs"]  # a fixture, used by name


@pytest.fixture
def vertex_emu(tmp_path: Path, gcs: str) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emu", job_seconds=JOB_SECONDS, storage_url=gcs) as handle:
        yield handle


@pytest.fixture
def vertex(vertex_emu: EmulatorHandle) -> genai.Client:
    return vertex_sdk(vertex_emu.base_url)


def _put(gcs: str, name: str, lines: list[dict[str, Any]]) -> str:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    storage_client(gcs).bucket(BUCKET).blob(name).upload_from_string(text)
    return f"gs://{BUCKET}/{name}"


def _create(client: genai.Client, src: str, **labels: str) -> types.BatchJob:
    extra = {"labels": labels} if labels else None
    return client.batches.create(
        model="gemini-2.5-flash",
        src=src,
        config=types.CreateBatchJobConfig(
            display_name="eval",
            dest=f"gs://{BUCKET}/out",
            http_options=types.HttpOptions(extra_body=extra),
        ),
    )


def test_vertex_job_reads_gcs_input_and_writes_predictions_under_a_per_job_directory(
    vertex: genai.Client, gcs: str
) -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    src = _put(gcs, "in/a.jsonl", [{"key": "a", "request": request}, {"key": "b", "request": {}}])

    job = _create(vertex, src)
    assert job.name is not None and "/batchPredictionJobs/" in job.name
    assert job.model == "publishers/google/models/gemini-2.5-flash"
    done = wait_for_end(vertex, job.name)

    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.completion_stats is not None
    assert (done.completion_stats.successful_count, done.completion_stats.failed_count) == (1, 1)
    assert done.output_info is not None and done.output_info.gcs_output_directory is not None
    directory = done.output_info.gcs_output_directory
    assert directory.startswith(f"gs://{BUCKET}/out/prediction-model-")
    blob = directory.removeprefix(f"gs://{BUCKET}/") + "/predictions.jsonl"
    lines = [
        json.loads(x)
        for x in storage_client(gcs).bucket(BUCKET).blob(blob).download_as_text().splitlines()
    ]
    assert [line["key"] for line in lines] == ["a", "b"]
    assert lines[0]["status"] == "" and lines[0]["response"]["candidates"]
    assert lines[1]["status"] and "response" not in lines[1]


def test_vertex_list_filters_by_label_and_pages(vertex: genai.Client, gcs: str) -> None:
    src = _put(gcs, "in/b.jsonl", [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}])
    mine = [_create(vertex, src, team="a").name for _ in range(3)]
    _create(vertex, src, team="b")

    listed = vertex.batches.list(config={"filter": 'labels.team="a"', "page_size": 2})
    assert sorted(job.name for job in listed) == sorted(mine)


def test_vertex_cancel_ends_an_open_job_and_refuses_a_finished_one(
    vertex: genai.Client, gcs: str
) -> None:
    src = _put(gcs, "in/c.jsonl", [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}])
    job = _create(vertex, src)
    assert job.name is not None
    vertex.batches.cancel(name=job.name)
    assert vertex.batches.get(name=job.name).state == types.JobState.JOB_STATE_CANCELLED
    with pytest.raises(errors.ClientError) as refused:
        vertex.batches.cancel(name=job.name)
    assert refused.value.code == 400


def test_vertex_delete_removes_a_finished_job(vertex: genai.Client, gcs: str) -> None:
    src = _put(gcs, "in/d.jsonl", [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}])
    job = _create(vertex, src)
    assert job.name is not None
    wait_for_end(vertex, job.name)
    vertex.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as gone:
        vertex.batches.get(name=job.name)
    assert gone.value.code == 404


def test_vertex_refuses_unknown_models_and_malformed_bigquery_tables_in_googles_error_shape(
    vertex: genai.Client,
) -> None:
    with pytest.raises(errors.ClientError) as unknown:
        vertex.batches.create(
            model="no-such-model",
            src=f"gs://{BUCKET}/x.jsonl",
            config={"dest": f"gs://{BUCKET}/out", "display_name": "x"},
        )
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as bq:
        vertex.batches.create(
            model="gemini-2.5-flash",
            src="bq://p.d",  # no table: BigQuery sources are tables (bq://project.dataset.table)
            config={"dest": "bq://p.d.out", "display_name": "x"},
        )
    assert bq.value.code == 400
