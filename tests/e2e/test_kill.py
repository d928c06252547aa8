"""Kill tests: `apply` SIGKILLed at each step that changes the world, then `apply` again.

Whatever the step, the second run converges, the service holds exactly one job per resource
attempt (never a duplicate paid job), and every result is on disk.
"""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request
from tests.e2e.test_apply import _jobs_by_resource

CREATE_AND_COLLECT_POINTS = [
    "input-uploaded",
    "intent-recorded",
    "job-created",
    "job-recorded",
    "results-downloaded",
    "results-written",
]


def _two_resources(project: Project) -> None:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]),
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.manifest(
        "inline",
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'one'}]}]\n"
        "      - contents: [{parts: [{text: 'two'}]}]\n"
        "  output: results/inline.jsonl\n",
    )
    project.commit()


DEFAULT_POINTS = frozenset({"job-created", "results-written"})
"""The points this table keeps in the default run: the create whose record a kill loses (the
duplicate paid job) and the last write of a collection. Every other point runs here in the slow
suite (`pytest -m slow`, CI), and every point runs in the default run through
test_kill_changes.py's diagonal."""


@pytest.mark.parametrize(
    "point",
    [
        pytest.param(point, marks=[] if point in DEFAULT_POINTS else [pytest.mark.slow])
        for point in CREATE_AND_COLLECT_POINTS
    ],
)
def test_apply_killed_at_any_step_converges_without_duplicate_jobs(
    project: Project, emulator: EmulatorHandle, point: str
) -> None:
    _two_resources(project)

    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    again = project.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 0
    assert _jobs_by_resource(emulator, project) == Counter({"eval": 1, "inline": 1})
    for name, count in (("eval", 3), ("inline", 2)):
        lines = (project.root / f"results/{name}.jsonl").read_text().splitlines()
        assert len(lines) == count
        assert all("response" in json.loads(line) for line in lines)
    state = project.state()["resources"]
    assert {name: [a["number"] for a in r["attempts"]] for name, r in state.items()} == {
        "eval": [1],
        "inline": [1],
    }


def test_apply_killed_after_cancel_forgets_the_resource_next_time(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(job_seconds=60)
    _two_resources(project)
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    (project.root / "manifests/inline.yaml").unlink()
    project.commit("remove inline")

    killed = project.run(
        "apply", "--auto-approve", "--no-wait", env={CRASH_HOOK_ENV: "cancel-sent"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    again = project.run("apply", "--auto-approve", "--no-wait")

    assert again.returncode == 0, again.stderr
    assert set(project.state()["resources"]) == {"eval"}
    assert _jobs_by_resource(emulator, project) == Counter({"eval": 1, "inline": 1})
