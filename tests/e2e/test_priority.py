"""`spec.priority` end to end: changed in the manifest, shown as an in-place `~` update, set on
the running job through the service's update call, and no new job created."""

from __future__ import annotations

import json
import signal

import httpx2
import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request


def _service_priority(emulator: EmulatorHandle, name: str) -> int:
    """What the service holds (get echoes it as an int64 string, 0 omitted; the SDK's BatchJob
    has no field for it)."""
    got = httpx2.get(f"{emulator.base_url}/v1beta/{name}", headers={"x-goog-api-key": "test"})
    return int(got.json()["metadata"].get("priority", "0"))


def test_a_priority_change_updates_the_running_job_in_place(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(job_seconds=600.0)  # still running through the whole test
    project.write("data/eval.jsonl", jsonl([{"key": "k", "request": text_request("p")}]))
    spec = file_job_spec("data/eval.jsonl", "results/eval.jsonl")
    project.manifest("eval", spec + "  priority: 2\n")
    project.commit()
    assert project.run("apply", "--auto-approve").returncode == 0
    job_name = project.state()["resources"]["eval"]["attempts"][0]["job_name"]
    assert _service_priority(emulator, job_name) == 2

    project.manifest("eval", spec + "  priority: 5\n")
    project.commit("raise the priority")
    planned = project.run("plan")
    assert planned.returncode == 0, planned.stderr
    as_json = json.loads(project.run("plan", "--format", "json").stdout)

    assert "~ eval" in planned.stdout
    assert "priority 2 -> 5, in place, no new job" in planned.stdout
    [action] = as_json["actions"]
    assert (action["kind"], action["reason"], action["job_names"]) == (
        "update",
        "priority_changed",
        [job_name],
    )
    assert as_json["summary"]["requests"] == 0

    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert _service_priority(emulator, job_name) == 5
    client = service_client(emulator)
    assert [job.name for job in client.batches.list()] == [job_name]
    record = project.state()["resources"]["eval"]
    assert record["in_place"]["priority"] == 5
    assert [a["job_name"] for a in record["attempts"]] == [job_name]
    assert json.loads(project.run("plan", "--format", "json").stdout)["actions"][0]["kind"] == (
        "refresh"
    )


@pytest.mark.slow
def test_apply_killed_right_after_setting_a_priority_sets_it_again_without_a_new_job(
    project: Project, emulator: EmulatorHandle
) -> None:
    """The service has the new priority, the state does not know: the next apply converges."""
    emulator.configure(job_seconds=600.0)
    project.write("data/eval.jsonl", jsonl([{"key": "k", "request": text_request("p")}]))
    spec = file_job_spec("data/eval.jsonl", "results/eval.jsonl")
    project.manifest("eval", spec + "  priority: 2\n")
    project.commit()
    assert project.run("apply", "--auto-approve").returncode == 0
    job_name = project.state()["resources"]["eval"]["attempts"][0]["job_name"]
    project.manifest("eval", spec + "  priority: 7\n")
    project.commit("raise the priority")

    killed = project.run("apply", "--auto-approve", env={CRASH_HOOK_ENV: "priority-set"})

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _service_priority(emulator, job_name) == 7
    assert project.state()["resources"]["eval"]["in_place"]["priority"] == 2
    again = project.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stderr
    record = project.state()["resources"]["eval"]
    assert record["in_place"]["priority"] == 7
    assert [a["job_name"] for a in record["attempts"]] == [job_name]
    client = service_client(emulator)  # held: its pager reads through it
    assert [job.name for job in client.batches.list()] == [job_name]
    plan = json.loads(project.run("plan", "--format", "json").stdout)
    assert [a["kind"] for a in plan["actions"]] == ["refresh"]
