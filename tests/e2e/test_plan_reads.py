"""`reconciler plan` starts listing the service before it loads the manifests and the state
(cli/session.ServiceReads); whichever side fails, the user reads that failure alone, in the
words it had when the two ran one after the other, and nothing else: no traceback, no asyncio
"Task exception was never retrieved", no second error from the side still running."""

from __future__ import annotations

import socket

import pytest

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request

NOISE = ("Traceback", "never retrieved", "Exception in thread", "Task was destroyed")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_job(project: Project) -> None:
    project.write("data/eval.jsonl", jsonl([{"key": "k0", "request": text_request("p0")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))


def _quiet(stderr: str) -> None:
    for noise in NOISE:
        assert noise not in stderr, stderr


@pytest.mark.parametrize("endpoint", ["reachable", "closed port", "gemini without a key"], ids=str)
def test_a_manifest_error_is_reported_alone_whatever_the_listing_meets(
    project: Project, endpoint: str
) -> None:
    project.manifest("broken", "  model: gemini-2.5-flash\n  source: {file: data/missing.jsonl}\n")
    env = {"GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""}
    if endpoint == "closed port":
        env["RECONCILER_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    elif endpoint == "gemini without a key":
        env["RECONCILER_ENDPOINT"] = "gemini"
    planned = project.run("plan", env=env)
    assert planned.returncode == 1
    assert "manifests/broken.yaml" in planned.stderr
    assert "cannot reach" not in planned.stderr
    assert "no API key" not in planned.stderr
    _quiet(planned.stderr)
    assert planned.stdout == ""


def test_a_plan_that_cannot_reach_the_service_says_so_in_one_line(project: Project) -> None:
    _one_job(project)
    planned = project.run("plan", env={"RECONCILER_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"})
    assert planned.returncode == 1
    assert "cannot reach 127.0.0.1: connection refused" in planned.stderr
    assert "batches.list" in planned.stderr
    _quiet(planned.stderr)


def test_a_plan_against_the_gemini_api_without_a_key_names_the_missing_key(
    project: Project,
) -> None:
    _one_job(project)
    planned = project.run(
        "plan",
        env={"RECONCILER_ENDPOINT": "gemini", "GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""},
    )
    assert planned.returncode == 1
    assert "no API key for the Gemini API" in planned.stderr
    _quiet(planned.stderr)


def test_a_state_that_cannot_be_read_is_reported_while_the_listing_ran(project: Project) -> None:
    _one_job(project)
    project.write("state/reconciler.state.json", "{not json")
    planned = project.run("plan")
    assert planned.returncode == 1
    assert "state" in planned.stderr
    _quiet(planned.stderr)


def test_a_no_op_plan_reads_jobs_files_and_models_once_each(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_job(project)
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0
    emulator.reset_calls()
    planned = project.run("plan", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stderr + planned.stdout
    _quiet(planned.stderr)
    calls = emulator.calls()
    assert (calls["batches.list"], calls["files.list"], calls["models.get"]) == (1, 1, 1)
    assert sum(calls.values()) == 3
