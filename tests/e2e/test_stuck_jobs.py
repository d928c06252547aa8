"""policy.timeout end to end: a job the service holds PENDING too long is cancelled and
replaced exactly once, on the fallback model, and the replacement's results are collected."""

from __future__ import annotations

import time

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request

POLICY = "  policy:\n    timeout:\n      pending: 1s\n    fallback_model: gemini-2.5-flash-lite\n"


def test_a_job_held_pending_past_its_timeout_is_replaced_once_on_the_fallback_model(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(pending_hold_seconds=600)  # the service's queue holds new jobs
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(2)]),
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl") + POLICY)
    project.commit()
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    stuck = project.state()["resources"]["eval"]["attempts"][0]["job_name"]

    deadline = time.monotonic() + 60  # until the service's clock puts the job past 1s
    plan = project.run("plan")
    while "past policy.timeout.pending" not in plan.stdout and time.monotonic() < deadline:
        time.sleep(0.2)
        plan = project.run("plan")
    assert "waited past policy.timeout" in plan.stdout, plan.stdout
    emulator.configure(pending_hold_seconds=0)  # the replacement is not held
    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    client = service_client(emulator)
    attempts = project.state()["resources"]["eval"]["attempts"]
    assert [a["number"] for a in attempts] == [1, 2]
    assert attempts[1]["model"] == "gemini-2.5-flash-lite"
    assert client.batches.get(name=stuck).state.name == "JOB_STATE_CANCELLED"
    replacement = client.batches.get(name=attempts[1]["job_name"])
    assert replacement.model.endswith("gemini-2.5-flash-lite")
    assert len(list(client.batches.list(config={"page_size": 50}))) == 2, "replaced once"
    assert len((project.root / "results/eval.jsonl").read_text().splitlines()) == 2
    assert project.run("plan", "--detailed-exitcode").returncode == 0
    status = project.run("status")
    assert "attempt 2 replaced because its job waited past policy.timeout" in status.stdout


def test_a_job_stuck_while_apply_waits_is_replaced_by_that_same_apply(
    project: Project, emulator: EmulatorHandle
) -> None:
    # The job this apply creates is held in the service's queue; the policy gives it 3 s. The
    # waiting apply must replace it itself (once, on the fallback model), not wait on it.
    emulator.configure(pending_hold_seconds=600)
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(2)]),
    )
    policy = POLICY.replace("pending: 1s", "pending: 3s")
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl") + policy)
    project.commit()
    client = service_client(emulator)

    waiting = project.start("apply", "--auto-approve", "--wait", "--timeout", "120s")
    try:
        deadline = time.monotonic() + 60
        while not list(client.batches.list()) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Only the first job is held: its replacement runs at once.
        emulator.configure(pending_hold_seconds=0)
        _, stderr = waiting.communicate(timeout=120)
    finally:
        waiting.kill()

    assert waiting.returncode == 0, stderr
    attempts = project.state()["resources"]["eval"]["attempts"]
    assert [a["number"] for a in attempts] == [1, 2], "replaced exactly once"
    assert attempts[0]["state"] == "CANCELLED" and attempts[1]["state"] == "SUCCEEDED"
    assert attempts[1]["model"] == "gemini-2.5-flash-lite"
    assert len((project.root / "results/eval.jsonl").read_text().splitlines()) == 2
    assert project.run("plan", "--detailed-exitcode").returncode == 0
