"""Kill tests for `cleanup:`: apply SIGKILLed right after the service deleted an input or a
results file, before the state recorded it. The results were durable on disk and in the state
before anything was deleted; the next apply converges without a new job, and the file the
killed run was cleaning up does not stay behind at the service."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request
from tests.e2e.test_apply import _jobs_by_resource

KEYS = 3


def _service_files(emulator: EmulatorHandle) -> list[str]:
    client = service_client(emulator)  # held: its pager reads through it
    return sorted(f.name or "" for f in client.files.list())


@pytest.mark.parametrize(
    "point", ["input-deleted", pytest.param("results-file-deleted", marks=pytest.mark.slow)]
)
def test_apply_killed_during_cleanup_keeps_results_and_leaves_no_file_behind(
    project: Project, emulator: EmulatorHandle, point: str
) -> None:
    emulator.configure(undeletable_result_files=False)
    requests = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(KEYS)]
    project.write("data/eval.jsonl", jsonl(requests))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()

    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Nothing was deleted before the results were on disk and recorded.
    results = project.root / "results/eval.jsonl"
    assert len(results.read_text().splitlines()) == KEYS
    assert project.state()["resources"]["eval"]["results"]["succeeded"] == KEYS

    again = project.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 0
    assert _jobs_by_resource(emulator, project) == Counter({"eval": 1})
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(line["key"] for line in lines) == [f"k{i}" for i in range(KEYS)]
    assert _service_files(emulator) == []
    (attempt,) = project.state()["resources"]["eval"]["attempts"]
    assert attempt["input_deleted_at"] is not None and attempt["output_deleted_at"] is not None
