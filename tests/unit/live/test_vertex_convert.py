"""Vertex values as the tool's own: identity labels, jobs as LiveJob, prediction lines as
Developer API result lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.genai import types

from reconciler.live.tags import IdentityTag
from reconciler.live.vertex_convert import MANAGED_FILTER, labels_for, live_job, result_line
from reconciler.state.document import JobState


def test_labels_carry_the_identity_tag_and_the_managed_marker_the_snapshot_filters_on() -> None:
    tag = IdentityTag("eval", "0123456789ab", 2, shard=3, rerun=1, project="abcdef12")

    labels = labels_for(tag.display_name("Nightly eval"))

    assert labels == {
        "managed-by": "reconciler",
        "rc-resource": "eval",
        "rc-spec": "0123456789ab",
        "rc-attempt": "2",
        "rc-project": "abcdef12",
        "rc-shard": "3r1",
    }
    assert MANAGED_FILTER == 'labels.managed-by="reconciler"'
    assert labels_for("made by someone else") == {"managed-by": "reconciler"}


def test_a_succeeded_job_points_at_its_predictions_and_names_its_model_as_the_developer_api() -> (
    None
):
    job = types.BatchJob(
        name="projects/p/locations/l/batchPredictionJobs/1",
        display_name="eval [rc:abcdef12/eval@0123456789ab:1]",
        state=types.JobState.JOB_STATE_SUCCEEDED,
        model="publishers/google/models/gemini-2.5-flash",
        output_info=types.BatchJobOutputInfo(gcs_output_directory="gs://b/out/prediction-model-x"),
    )

    live = live_job(job, "get")

    assert live.state is JobState.SUCCEEDED
    assert live.model == "models/gemini-2.5-flash"
    assert live.output_file == "gs://b/out/prediction-model-x/predictions.jsonl"


def test_a_running_or_cancelling_job_has_no_output_yet() -> None:
    job = types.BatchJob(name="n", state=types.JobState.JOB_STATE_CANCELLING)
    live = live_job(job, "get")
    assert live.state is JobState.RUNNING and live.output_file is None


def test_prediction_lines_become_result_lines_keyed_as_sent() -> None:
    ok = result_line({"key": "k1", "request": {}, "response": {"candidates": []}, "status": ""}, 1)
    failed = result_line({"key": "k2", "request": {}, "status": "quota"}, 2)
    unkeyed = result_line({"request": {}, "response": {"candidates": []}}, 3)

    assert ok == {"key": "k1", "response": {"candidates": []}}
    assert failed == {"key": "k2", "error": {"code": 13, "message": "quota"}}
    assert unkeyed["key"] == "3"


@pytest.mark.hostile_input
def test_prediction_lines_that_cannot_be_parsed_become_failed_result_lines(
    tmp_path: Path,
) -> None:
    import json as json_module

    from reconciler.live.vertex_convert import rewrite_predictions

    raw = tmp_path / "predictions.jsonl"
    raw.write_bytes(
        b"[" * 100_000 + b"]" * 100_000 + b"\n" + b'{"a": ' + b"9" * 5_000 + b"}\n" + b"\xff{\n"
    )
    rewrite_predictions(raw, tmp_path / "results.jsonl")
    lines = [
        json_module.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()
    ]
    assert len(lines) == 3
    assert all("not JSON" in json_module.dumps(line) for line in lines)
