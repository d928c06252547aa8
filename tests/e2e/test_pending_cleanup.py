"""A cleanup a killed run left is part of the plan: `plan` names the files the next apply
deletes (never "no changes"), and applying a saved plan deletes exactly those."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request


def _service_files(emulator: EmulatorHandle) -> list[str]:
    client = service_client(emulator)  # held: its pager reads through it
    return sorted(f.name or "" for f in client.files.list())


def _killed_during_cleanup(project: Project, emulator: EmulatorHandle) -> dict[str, str]:
    """Apply killed right after the service deleted the input, before the state recorded it;
    the attempt's input and results file names."""
    emulator.configure(undeletable_result_files=False)
    requests = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(2)]
    project.write("data/eval.jsonl", jsonl(requests))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()
    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: "input-deleted"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (attempt,) = project.state()["resources"]["eval"]["attempts"]
    assert attempt["input_deleted_at"] is None  # the delete happened, its record did not
    return {"input": attempt["input_file"], "results": attempt["output_file"]}


def test_plan_shows_the_cleanup_a_killed_run_left(
    project: Project, emulator: EmulatorHandle
) -> None:
    files = _killed_during_cleanup(project, emulator)

    planned = project.run("plan", "--detailed-exitcode")

    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "No changes" not in planned.stdout
    assert f"delete input file {files['input']} of eval attempt 1" in planned.stdout
    assert f"delete results file {files['results']} of eval attempt 1" in planned.stdout
    assert "Plan: 2 service file(s) to delete." in planned.stdout
    document = json.loads(project.run("plan", "--format", "json").stdout)
    assert document["summary"]["has_changes"] is True
    assert sorted((c["role"], c["file_name"]) for c in document["cleanup"]) == [
        ("input", files["input"]),
        ("results", files["results"]),
    ]


def test_a_saved_plan_deletes_what_it_listed_and_the_plan_is_then_empty(
    project: Project, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    files = _killed_during_cleanup(project, emulator)
    plan_file = tmp_path / "plan.bin"
    assert project.run("plan", "--out", str(plan_file)).returncode == 0

    applied = project.run("apply", str(plan_file), "--no-wait")

    assert applied.returncode == 0, applied.stderr
    assert files["results"] not in _service_files(emulator)
    (attempt,) = project.state()["resources"]["eval"]["attempts"]
    assert attempt["input_deleted_at"] is not None
    assert attempt["output_deleted_at"] is not None
    again = project.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    assert "No changes" in again.stdout


@pytest.mark.slow
def test_a_saved_plan_deletes_nothing_it_did_not_list(
    project: Project, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The sweep of what a run left follows the plan: made under `cleanup.results: false`,
    the plan lists the input alone, and apply records that deletion and no other (the killed
    run's delete of the results file stays unrecorded, as the settings ask)."""
    files = _killed_during_cleanup(project, emulator)
    project.write(
        "reconciler.yaml",
        (project.root / "reconciler.yaml").read_text() + "cleanup:\n  results: false\n",
    )
    plan_file = tmp_path / "plan.bin"
    planned = project.run("plan", "--out", str(plan_file))
    assert planned.returncode == 0, planned.stderr
    assert f"delete input file {files['input']}" in planned.stdout
    assert "delete results file" not in planned.stdout

    applied = project.run("apply", str(plan_file), "--no-wait")

    assert applied.returncode == 0, applied.stderr
    (attempt,) = project.state()["resources"]["eval"]["attempts"]
    assert attempt["input_deleted_at"] is not None
    assert attempt["output_deleted_at"] is None
