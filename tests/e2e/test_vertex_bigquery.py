"""BigQuery sources and outputs on `endpoint: vertex`, through the CLI (a subprocess, as users
run it): the emulator's Vertex jobs read source tables from and write result tables to a real
BigQuery emulator (bqemulator), beside a real Cloud Storage emulator; no cloud at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorHandle, running_emulator
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request
from tests.e2e.vertex_env import vertex_project
from tests.fixtures.bigquery import (
    BQ_PROJECT,
    bigquery,
    create_request_table,
    dataset,
    delete_table,
    insert_rows,
    table_rows,
)
from tests.fixtures.gcs import BUCKET, gcs

__all__ = ["bigquery", "dataset", "gcs"]  # fixtures, used by name


@pytest.fixture
def vertex_emulator(tmp_path: Path, gcs: str, bigquery: str) -> Iterator[EmulatorHandle]:
    with running_emulator(
        tmp_path / "emulator", job_seconds=0.6, storage_url=gcs, bigquery_url=bigquery
    ) as handle:
        yield handle


@pytest.fixture
def vproject(tmp_path: Path, vertex_emulator: EmulatorHandle, gcs: str, bigquery: str) -> Project:
    return vertex_project(
        tmp_path / "repo", vertex_emulator.base_url, gcs, extra=f"  bigquery_url: {bigquery}\n"
    )


def _table(dataset: str, table: str) -> str:
    return f"bq://{BQ_PROJECT}.{dataset}.{table}"


def _requests(count: int, word: str = "prompt") -> list[dict[str, object]]:
    return [{"key": f"k{i}", "request": text_request(f"{word} {i}")} for i in range(count)]


def _bq_spec(source: str, output: str) -> str:
    return f"  model: gemini-2.5-flash\n  source:\n    {source}\n  output: {output}\n"


def test_a_bigquery_table_runs_into_a_bigquery_table_and_a_changed_table_plans_a_new_job(
    vproject: Project, bigquery: str, dataset: str
) -> None:
    create_request_table(bigquery, BQ_PROJECT, dataset, "prompts", _requests(3))
    out = _table(dataset, "answers")
    vproject.manifest("eval", _bq_spec(f"bigquery: {_table(dataset, 'prompts')}", out))
    vproject.commit()

    applied = vproject.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    rows = table_rows(bigquery, BQ_PROJECT, dataset, "answers")
    assert sorted(row["key"] for row in rows) == ["k0", "k1", "k2"]
    assert {"request", "response", "status", "processed_time"} <= set(rows[0])
    results = vproject.state()["resources"]["eval"]["results"]
    assert (results["location"], results["succeeded"], results["failed"]) == (out, 3, 0)
    attempt = vproject.state()["resources"]["eval"]["attempts"][0]
    assert attempt["output_file"] == out
    assert attempt["output_deleted_at"] is None and attempt["input_deleted_at"] is None
    assert attempt["usage"]["prompt"] > 0 and attempt["cost_usd"] > 0  # from the rows
    printed = vproject.run("results", "eval", "--print")
    assert printed.returncode == 0, printed.stderr
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert sorted(line["key"] for line in lines) == ["k0", "k1", "k2"]
    assert all(line["response"]["candidates"] for line in lines)
    assert vproject.run("plan", "--detailed-exitcode").returncode == 0

    insert_rows(bigquery, BQ_PROJECT, dataset, "prompts", _requests(1, "another"))
    refused = vproject.run("plan", "--detailed-exitcode")

    # The new job would write `answers` again, which Vertex refuses: it writes only new tables.
    assert refused.returncode == 1, refused.stdout
    assert f"{out} already exists" in refused.stderr and "manifests/eval.yaml" in refused.stderr
    assert "Traceback" not in refused.stderr
    shown = vproject.run("status")  # status shows the plan as it is, refusing nothing
    assert shown.returncode == 0 and "eval" in shown.stdout, shown.stderr

    delete_table(bigquery, BQ_PROJECT, dataset, "answers")  # the user drops it
    gone = vproject.run("results", "eval", "--print")

    assert gone.returncode == 1
    assert f"results in {out} cannot be read" in gone.stderr and "Traceback" not in gone.stderr
    planned = vproject.run("plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "eval" in planned.stdout and "source" in planned.stdout


def test_a_first_job_into_a_table_that_already_exists_is_refused_at_plan(
    vproject: Project, bigquery: str, dataset: str
) -> None:
    create_request_table(bigquery, BQ_PROJECT, dataset, "prompts", _requests(1))
    create_request_table(bigquery, BQ_PROJECT, dataset, "taken", [])  # someone else's table
    vproject.manifest(
        "eval", _bq_spec(f"bigquery: {_table(dataset, 'prompts')}", _table(dataset, "taken"))
    )
    vproject.commit()

    refused = vproject.run("apply", "--auto-approve")

    assert refused.returncode == 1
    assert "already exists" in refused.stderr and "bq rm -t" in refused.stderr
    assert "Traceback" not in refused.stderr
    state = vproject.root / "state" / "reconciler.state.json"
    assert not state.exists() or "eval" not in vproject.state()["resources"]  # nothing created


@pytest.mark.slow  # ~15 s: two CLI runs and a job
def test_a_local_source_writes_its_results_to_a_bigquery_table(
    vproject: Project, bigquery: str, dataset: str
) -> None:
    vproject.write("data/eval.jsonl", jsonl(_requests(2)))
    out = _table(dataset, "from_file")
    vproject.manifest("eval", file_job_spec("data/eval.jsonl", out))
    vproject.commit()

    applied = vproject.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    rows = table_rows(bigquery, BQ_PROJECT, dataset, "from_file")
    assert sorted(row["key"] for row in rows) == ["k0", "k1"]
    assert vproject.state()["resources"]["eval"]["results"]["location"] == out
    assert not (vproject.root / "results").exists()  # the results stay in BigQuery
    assert vproject.run("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.slow  # ~15 s: two CLI runs and a job
def test_a_bigquery_source_writes_its_results_to_cloud_storage(
    vproject: Project, bigquery: str, dataset: str, gcs: str
) -> None:
    from tests.fixtures.gcs import storage_client

    create_request_table(bigquery, BQ_PROJECT, dataset, "prompts", _requests(2))
    vproject.manifest(
        "eval",
        _bq_spec(f"bigquery: {_table(dataset, 'prompts')}", f"gs://{BUCKET}/results/eval/"),
    )
    vproject.commit()

    applied = vproject.run("apply", "--auto-approve", "--wait", env={"STORAGE_EMULATOR_HOST": gcs})

    assert applied.returncode == 0, applied.stderr
    blob = storage_client(gcs).bucket(BUCKET).blob("results/eval/results.jsonl")
    lines = [json.loads(line) for line in blob.download_as_text().splitlines()]
    assert sorted(line["key"] for line in lines) == ["k0", "k1"]
    assert vproject.run("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.parametrize(
    ("endpoint", "field", "expected"),
    [
        ("gemini", "source:\n    bigquery: bq://my-project.ds.prompts", "needs `endpoint: vertex`"),
        ("gemini", "output: bq://my-project.ds.answers", "needs `endpoint: vertex`"),
        ("vertex", "source:\n    bigquery: bq://my-project.prompts", "bq://project.dataset.table"),
        ("vertex", "output: bq://my-project/ds/answers", "bq://project.dataset.table"),
    ],
)
def test_validate_refuses_bigquery_off_vertex_and_malformed_table_uris(
    tmp_path: Path, endpoint: str, field: str, expected: str
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    proj = Project(root, endpoint)
    vertex = "vertex:\n  project: demo\n  location: us-central1\n  staging: gs://vertex-staging/p\n"
    proj.write("reconciler.yaml", f"manifests: manifests\n{vertex}")
    proj.write("data/in.jsonl", jsonl(_requests(1)))
    source = "" if field.startswith("source") else "source:\n    file: data/in.jsonl\n  "
    output = "" if field.startswith("output") else "\n  output: results/out.jsonl"
    proj.manifest("eval", f"  model: gemini-2.5-flash\n  {source}{field}{output}\n")

    checked = proj.run("validate", env={"GEMINI_API_KEY": "test-key"})

    assert checked.returncode == 1
    assert expected in checked.stderr + checked.stdout
    assert "manifests/eval.yaml:" in checked.stderr + checked.stdout
    assert "Traceback" not in checked.stderr


def test_doctor_checks_each_source_table_and_output_dataset_with_the_runs_credentials(
    vproject: Project, bigquery: str, dataset: str
) -> None:
    create_request_table(bigquery, BQ_PROJECT, dataset, "prompts", _requests(3))
    vproject.manifest(
        "good", _bq_spec(f"bigquery: {_table(dataset, 'prompts')}", _table(dataset, "answers"))
    )
    missing = _table(dataset, "no_such_table")
    elsewhere = f"bq://{BQ_PROJECT}.ds_missing.answers"
    vproject.manifest("bad", _bq_spec(f"bigquery: {missing}", elsewhere))
    vproject.commit()

    doctor = vproject.run("doctor")

    assert doctor.returncode == 1, doctor.stdout
    lines = doctor.stdout.splitlines()
    assert f"ok    bigquery source: {_table(dataset, 'prompts')}: readable (3 rows)" in lines
    assert any(
        line.startswith(f"FAIL  bigquery source: {missing}: not found: create it") for line in lines
    )
    assert (
        f"ok    bigquery output: {_table(dataset, 'answers')}: dataset {BQ_PROJECT}.{dataset} "
        "exists; the job creates the table"
    ) in lines
    assert any(
        line.startswith(f"FAIL  bigquery output: {elsewhere}: not found: dataset")
        and f"bq mk --dataset {BQ_PROJECT}:ds_missing" in line
        for line in lines
    )
    assert "Traceback" not in doctor.stderr
