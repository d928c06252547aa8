"""The emulator's Vertex routes refuse what Vertex AI batch prediction refuses, through the real
SDK (`vertexai=True`) against a real Cloud Storage emulator and a real BigQuery emulator: an
input file past 1 GB and an existing (or dataset-less) BigQuery destination at create, and a
job past 200,000 requests when it runs. The limits are emulator settings so a test can reach
them with a few lines; their defaults are Google's figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from reconciler.emulator import running_emulator
from reconciler.emulator.settings import EmulatorSettings
from tests.emulator.conftest import JOB_SECONDS, wait_for_end
from tests.fixtures.bigquery import BQ_PROJECT, bigquery, create_request_table, dataset
from tests.fixtures.gcs import BUCKET, gcs, storage_client, vertex_sdk

__all__ = ["bigquery", "dataset", "gcs"]  # fixtures, used by name

REQUEST = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


@pytest.fixture
def strict(tmp_path: Path, gcs: str, bigquery: str) -> Iterator[genai.Client]:
    """Vertex with its limits lowered to 2 requests and 400 bytes."""
    with running_emulator(
        tmp_path / "emu",
        job_seconds=JOB_SECONDS,
        storage_url=gcs,
        bigquery_url=bigquery,
        vertex_max_requests=2,
        vertex_max_input_bytes=400,
    ) as handle:
        yield vertex_sdk(handle.base_url)


def _put(gcs: str, name: str, count: int) -> str:
    text = "".join(json.dumps({"key": f"k{i}", "request": REQUEST}) + "\n" for i in range(count))
    storage_client(gcs).bucket(BUCKET).blob(name).upload_from_string(text)
    return f"gs://{BUCKET}/{name}"


def _create(client: genai.Client, src: str, dest: str) -> types.BatchJob:
    return client.batches.create(
        model="gemini-2.5-flash", src=src, config=types.CreateBatchJobConfig(dest=dest)
    )


def test_the_defaults_are_googles_figures() -> None:
    settings = EmulatorSettings()
    assert (settings.vertex_max_requests, settings.vertex_max_input_bytes) == (
        200_000,
        1_000_000_000,
    )


def test_an_input_file_past_the_size_limit_is_refused_at_create(
    strict: genai.Client, gcs: str
) -> None:
    big = _put(gcs, "in/big.jsonl", 6)  # ~ 6 x 90 bytes, past 400

    with pytest.raises(errors.ClientError) as refused:
        _create(strict, big, f"gs://{BUCKET}/out")

    assert refused.value.code == 400
    assert "at most 400 bytes" in str(refused.value)


def test_a_job_past_the_request_limit_fails_and_writes_nothing(
    strict: genai.Client, gcs: str, bigquery: str, dataset: str
) -> None:
    three = _put(gcs, "in/three.jsonl", 3)  # 3 requests, under 400 bytes

    job = _create(strict, three, f"gs://{BUCKET}/out")
    assert job.name is not None
    done = wait_for_end(strict, job.name)

    assert done.state == types.JobState.JOB_STATE_FAILED
    assert done.error is not None and "more than the 2" in str(done.error.message)
    written = list(storage_client(gcs).bucket(BUCKET).list_blobs(prefix="out/"))
    assert written == []


def test_a_source_table_past_the_request_limit_fails(
    strict: genai.Client, bigquery: str, dataset: str
) -> None:
    rows: list[dict[str, Any]] = [{"key": f"k{i}", "request": REQUEST} for i in range(3)]
    create_request_table(bigquery, BQ_PROJECT, dataset, "prompts", rows)
    source = f"bq://{BQ_PROJECT}.{dataset}.prompts"

    job = _create(strict, source, f"bq://{BQ_PROJECT}.{dataset}.answers")
    assert job.name is not None
    done = wait_for_end(strict, job.name)

    assert done.state == types.JobState.JOB_STATE_FAILED
    assert done.error is not None and "3 requests" in str(done.error.message)


def test_an_existing_destination_table_is_refused_at_create(
    strict: genai.Client, gcs: str, bigquery: str, dataset: str
) -> None:
    create_request_table(bigquery, BQ_PROJECT, dataset, "answers", [])
    src = _put(gcs, "in/one.jsonl", 1)

    with pytest.raises(errors.ClientError) as refused:
        _create(strict, src, f"bq://{BQ_PROJECT}.{dataset}.answers")

    assert refused.value.code == 400
    assert "already exists" in str(refused.value)


def test_a_destination_in_a_missing_dataset_is_refused_at_create(
    strict: genai.Client, gcs: str
) -> None:
    src = _put(gcs, "in/one.jsonl", 1)

    with pytest.raises(errors.ClientError) as refused:
        _create(strict, src, f"bq://{BQ_PROJECT}.ds_missing.answers")

    assert refused.value.code == 400
    assert "does not exist" in str(refused.value)


def test_a_table_made_by_someone_else_after_create_fails_the_job(
    strict: genai.Client, gcs: str, bigquery: str, dataset: str
) -> None:
    src = _put(gcs, "in/one.jsonl", 1)
    job = _create(strict, src, f"bq://{BQ_PROJECT}.{dataset}.answers")
    assert job.name is not None
    create_request_table(bigquery, BQ_PROJECT, dataset, "answers", [])

    done = wait_for_end(strict, job.name)

    assert done.state == types.JobState.JOB_STATE_FAILED
    assert done.error is not None and "Already Exists" in str(done.error.message)


def test_two_jobs_write_two_new_tables(
    strict: genai.Client, gcs: str, bigquery: str, dataset: str
) -> None:
    src = _put(gcs, "in/one.jsonl", 1)
    names = []
    for table in ("first", "second"):
        job = _create(strict, src, f"bq://{BQ_PROJECT}.{dataset}.{table}")
        assert job.name is not None
        names.append(job.name)

    ended = [wait_for_end(strict, name) for name in names]

    assert [job.state for job in ended] == [types.JobState.JOB_STATE_SUCCEEDED] * 2


def test_bigquery_in_the_global_location_is_refused_at_create(
    tmp_path: Path, gcs: str, bigquery: str, dataset: str
) -> None:
    src = _put(gcs, "in/one.jsonl", 1)
    with running_emulator(
        tmp_path / "emu", job_seconds=JOB_SECONDS, storage_url=gcs, bigquery_url=bigquery
    ) as handle:
        client = vertex_sdk(handle.base_url, location="global")
        with pytest.raises(errors.ClientError) as refused:
            _create(client, src, f"bq://{BQ_PROJECT}.{dataset}.answers")
        job = _create(client, src, f"gs://{BUCKET}/out")  # Cloud Storage is fine there

    assert refused.value.code == 400 and "location global" in str(refused.value)
    assert job.name is not None and "/locations/global/" in job.name
