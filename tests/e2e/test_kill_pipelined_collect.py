"""A kill during a collect that runs while polling goes on (apply/converge.py collects in the
background while other jobs still run): the next apply keeps the collected results, creates no
second job for either resource, and leaves the running job running, recorded once."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request
from tests.e2e.test_apply import _jobs_by_resource


@pytest.mark.slow  # three CLI runs per point
@pytest.mark.parametrize("point", ["results-downloaded", "results-written", "input-deleted"])
def test_a_collect_killed_while_another_job_still_runs_converges(
    project: Project, emulator: EmulatorHandle, point: str
) -> None:
    emulator.configure(undeletable_result_files=False, job_seconds=3600)
    project.write("data/slow.jsonl", jsonl([{"key": "s", "request": text_request("slow")}]))
    project.manifest("slow", file_job_spec("data/slow.jsonl", "results/slow.jsonl"))
    project.commit()
    started = project.run("apply", "--auto-approve", "--no-wait")
    assert started.returncode == 0, started.stderr
    (slow_job,) = [a["job_name"] for a in project.state()["resources"]["slow"]["attempts"]]

    emulator.configure(job_seconds=0.3)  # jobs created from now on end at once
    requests = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]
    project.write("data/fast.jsonl", jsonl(requests))
    project.manifest("fast", file_job_spec("data/fast.jsonl", "results/fast.jsonl"))
    project.commit()
    killed = project.run(
        "apply", "--auto-approve", "--wait", "--timeout", "120s", env={CRASH_HOOK_ENV: point}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    again = project.run("apply", "--auto-approve", "--no-wait")

    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == Counter({"slow": 1, "fast": 1})
    state = project.state()["resources"]
    assert [a["job_name"] for a in state["slow"]["attempts"]] == [slow_job]
    assert state["slow"]["attempts"][0]["state"] in ("PENDING", "RUNNING")
    (fast,) = state["fast"]["attempts"]
    assert fast["state"] == "SUCCEEDED" and fast["input_deleted_at"] is not None
    lines = [
        json.loads(line) for line in (project.root / "results/fast.jsonl").read_text().splitlines()
    ]
    assert sorted(line["key"] for line in lines) == ["k0", "k1", "k2"]
    assert all("response" in line for line in lines)
    client = service_client(emulator)  # held: its pager reads through it
    live = {job.name: job for job in client.batches.list()}
    assert str(live[slow_job].state).endswith(("RUNNING", "PENDING"))
