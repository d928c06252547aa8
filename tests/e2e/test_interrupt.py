"""Ctrl-C during `apply`: one line that says what goes on at the service, exit 130, no
traceback, and the next apply resumes with the jobs that exist instead of creating new ones.

The CLI runs in a subprocess and gets a real SIGINT. When it is sent is read from the world,
not guessed: the emulator's call counts (an upload or download under way, held by the
emulator's latency setting) or the state file (a job recorded and held pending).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorHandle
from reconciler.errors import ReconcilerError
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request
from tests.e2e.test_apply import _jobs_by_resource

APPLY = ("apply", "--auto-approve", "--wait")
RESUME_HINT = "run `reconciler apply` to resume"


def _start_apply(project: Project, endpoint: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"RECONCILER_ENDPOINT": endpoint, "NO_COLOR": "1"})
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "-C", str(project.root), *APPLY],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _when(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Wait until `condition` holds (polled), failing if the process ends first."""
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"apply ended before the moment to interrupt it:\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the moment to interrupt apply never came")
        time.sleep(0.02)


def _interrupt(process: subprocess.Popen[str]) -> str:
    """SIGINT, then the process's stderr once it has exited 130."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    return err


def _one_input(project: Project) -> None:
    lines = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()


def _recorded_jobs(project: Project) -> int:
    """Jobs recorded so far, journal included: while apply holds the lock, its writes go to the
    state's journal and reach the file only when the lock is released."""
    try:
        state = project.state()
    except (OSError, ValueError, ReconcilerError):
        return 0
    return sum(
        1
        for record in state.get("resources", {}).values()
        for attempt in record.get("attempts", [])
        if attempt.get("job_name")
    )


def test_ctrl_c_mid_upload_exits_130_with_one_line_and_the_next_apply_creates_one_job(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_input(project)
    # Every call waits, so the upload is still under way when the signal comes.
    emulator.configure(latency_seconds=0.4)
    process = _start_apply(project, emulator.base_url)
    _when(lambda: emulator.calls().get("files.upload_chunk", 0) > 0, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 0 job(s) keep running at the service; {RESUME_HINT}"
    )
    emulator.configure(latency_seconds=0.0)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == {"eval": 1}
    assert (project.root / "results" / "eval.jsonl").exists()


def test_ctrl_c_while_jobs_run_names_them_and_the_next_apply_adopts_them(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_input(project)
    emulator.configure(job_seconds=3.0)
    process = _start_apply(project, emulator.base_url)
    _when(lambda: _recorded_jobs(project) == 1, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 1 job(s) keep running at the service; {RESUME_HINT}"
    )
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == {"eval": 1}, "no new job on resume"
    assert (project.root / "results" / "eval.jsonl").exists()


def test_ctrl_c_mid_download_leaves_no_partial_results_and_the_next_apply_collects(
    project: Project, emulator: EmulatorHandle
) -> None:
    _one_input(project)
    process = _start_apply(project, emulator.base_url)
    _when(lambda: emulator.calls().get("batches.create_generate", 0) > 0, process)
    emulator.configure(latency_seconds=0.4)
    _when(lambda: emulator.calls().get("files.download", 0) > 0, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 0 job(s) keep running at the service; {RESUME_HINT}"
    )
    assert not (project.root / "results" / "eval.jsonl").exists()
    emulator.configure(latency_seconds=0.0)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert _jobs_by_resource(emulator, project) == {"eval": 1}
    assert len((project.root / "results" / "eval.jsonl").read_text().splitlines()) == 3


def test_ctrl_c_with_the_embedded_emulator_shuts_it_down_quietly(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    project = Project(root, "emulator")
    project.write(
        "reconciler.yaml",
        "manifests: manifests\nstate: state/reconciler.state.json\nendpoint: emulator\n"
        "emulator:\n  job_seconds: 600\n",
    )
    lines = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    process = _start_apply(project, "emulator")
    _when(lambda: _recorded_jobs(project) == 1, process)

    err = _interrupt(process)

    assert (
        err.strip().splitlines()[-1]
        == f"interrupted: 1 job(s) keep running at the service; {RESUME_HINT}"
    )
