"""The kill suite on `endpoint: vertex`: every kind of change, killed at every step, lands on
the next apply, as on the Developer API (test_kill_changes.py shares the scenario table).

Vertex differs where a kill can hurt: inputs are staged content-addressed in Cloud Storage (no
Files API), a job's identity is in its labels as well as its display name, and results are a
`predictions.jsonl` rewritten into result lines. Whatever step the `apply` was SIGKILLed at,
one more `apply` converges with exactly one job per attempt, shard and re-run at the service.

The whole table runs in the slow suite; the default run keeps one case per kind of change, at
the step where a lost answer matters most (the job exists, the state does not know it yet).
"""

from __future__ import annotations

import signal
import time

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.change_scenarios import (
    CHANGES,
    POINTS,
    Change,
    assert_converged,
    prompts,
    start,
)
from tests.e2e.conftest import Project
from tests.e2e.vertex_env import (
    gcs,
    staged,
    vertex_client,
    vertex_emulator,
    vertex_job_counts,
    vertex_jobs,
    vproject,
)

__all__ = ["gcs", "vertex_emulator", "vproject"]  # fixtures, used by name

VERTEX_CHANGES: dict[str, Change] = {"create": Change(None, prompts(3), attempts=1), **CHANGES}
REPRESENTATIVE = "job-created"
"""The step each kind of change is killed at in the default run."""
VARIANTS = frozenset({"replace", "incremental", "sharded-create", "sharded-rerun"})
"""Kinds whose representative case only repeats another's on this endpoint (create and
sharded-incremental stand for them; the Developer API's table runs every kind by default): the
slow suite alone runs them."""


def _cases(kinds: list[str], points: list[str]) -> list[object]:
    cases: list[object] = []
    for kind in kinds:
        for point in points:
            marks: list[pytest.MarkDecorator] = (
                [] if point == REPRESENTATIVE and kind not in VARIANTS else [pytest.mark.slow]
            )
            cases.append(pytest.param(kind, point, marks=marks))
    return cases


@pytest.mark.parametrize(("kind", "point"), _cases(list(VERTEX_CHANGES), POINTS))
def test_vertex_change_killed_at_any_step_lands_on_the_next_apply(
    vproject: Project, vertex_emulator: EmulatorHandle, gcs: str, kind: str, point: str
) -> None:
    change = VERTEX_CHANGES[kind]
    start(vproject, change)

    killed = vproject.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point in ("input-uploaded", "intent-recorded"):
        # Nothing was created yet: the change must still be visible, not recorded as done.
        assert vproject.run("plan", "--detailed-exitcode").returncode == 2

    again = vproject.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    assert_converged(vproject, change, vertex_job_counts(vertex_emulator))
    assert staged(gcs, "inputs") == [], "every staged input is deleted once collected"


def _settle(emulator: EmulatorHandle, name: str) -> None:
    """Read the job until it has ended (the emulator runs a job when a read finds it due)."""
    client = vertex_client(emulator)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.batches.get(name=name).state.name in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
            client.close()
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} did not end")


@pytest.mark.parametrize(("kind", "point"), _cases(["retry"], POINTS))
def test_vertex_retry_of_failed_requests_killed_at_any_step_lands_on_the_next_apply(
    vproject: Project, vertex_emulator: EmulatorHandle, gcs: str, kind: str, point: str
) -> None:
    change = Change(None, prompts(8), "  policy:\n    retry_failed_requests: 1\n")
    vertex_emulator.configure(request_error_rate=0.5)
    start(vproject, change)
    assert vproject.run("apply", "--auto-approve", "--no-wait").returncode == 0
    _settle(vertex_emulator, vproject.state()["resources"]["eval"]["attempts"][0]["job_name"])
    vertex_emulator.configure(request_error_rate=0.0)

    killed = vproject.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = vproject.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    jobs = vertex_job_counts(vertex_emulator)
    assert_converged(vproject, change, jobs)
    record = vproject.state()["resources"]["eval"]
    assert record["attempts"][-1]["purpose"] == "retry_failed", record["attempts"]
    assert record["results"]["failed"] == 0 and record["results"]["succeeded"] == 8
    assert staged(gcs, "inputs") == []


@pytest.mark.parametrize(
    "how", ["destroy", pytest.param("manifest-removed", marks=pytest.mark.slow)]
)
def test_vertex_destroy_killed_after_the_cancel_forgets_the_resource_next_time(
    vproject: Project, vertex_emulator: EmulatorHandle, gcs: str, how: str
) -> None:
    vertex_emulator.configure(job_seconds=60)
    start(vproject, VERTEX_CHANGES["create"])
    assert vproject.run("apply", "--auto-approve", "--no-wait").returncode == 0
    [job_name] = [a["job_name"] for a in vproject.state()["resources"]["eval"]["attempts"]]
    if how == "destroy":
        command: tuple[str, ...] = ("destroy", "--auto-approve")
    else:
        (vproject.root / "manifests/eval.yaml").unlink()
        vproject.commit("remove eval")
        command = ("apply", "--auto-approve", "--no-wait")

    killed = vproject.run(*command, env={CRASH_HOOK_ENV: "cancel-sent"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = vproject.run(*command)

    assert again.returncode == 0, again.stderr
    assert vproject.state()["resources"] == {}
    client = vertex_client(vertex_emulator)
    assert client.batches.get(name=job_name).state.name == "JOB_STATE_CANCELLED"
    client.close()
    assert len(vertex_jobs(vertex_emulator)) == 1, "nothing was created again"
    # `destroy` keeps the manifest: the next plan creates it afresh; a removed one is gone.
    expected = 2 if how == "destroy" else 0
    assert vproject.run("plan", "--detailed-exitcode").returncode == expected
