"""What reconciler guarantees across runs and projects (README, "What reconciler guarantees").

Each test is one guarantee, tried as a team's CI would hit it: two projects on one service, a
destroy followed by an apply, results deleted or edited on disk, inline responses that come back
without their keys, image keys that would collide as file names, and a state write that is lost
because someone else wrote the state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, file_job_spec, git, jsonl, service_client, text_request

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _eval(project: Project, n: int = 2) -> None:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(n)]),
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()


def _job_of(project: Project, name: str = "eval") -> str:
    attempts = project.state()["resources"][name]["attempts"]
    job_name = attempts[-1]["job_name"]
    assert job_name, attempts
    return str(job_name)


def _apply(project: Project, *flags: str) -> subprocess.CompletedProcess[str]:
    return project.run("apply", "--auto-approve", *(flags or ("--wait",)))


@pytest.fixture
def other(tmp_path: Path, project: Project) -> Project:
    """A second repository on the same service, configured like the first."""
    root = tmp_path / "other-repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    second = Project(root, project.endpoint)
    second.write("reconciler.yaml", (project.root / "reconciler.yaml").read_text())
    return second


def test_two_projects_declaring_the_same_job_each_create_and_destroy_only_their_own(
    project: Project, other: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(job_seconds=60)
    _eval(project)
    _eval(other)  # the same resource name, model and input

    assert _apply(project, "--no-wait").returncode == 0
    second = _apply(other, "--no-wait")

    assert second.returncode == 0, second.stderr
    assert "adopt" not in (second.stdout + second.stderr).lower()
    ours, theirs = _job_of(project), _job_of(other)
    assert ours != theirs, "the second project adopted the first one's job"
    client = service_client(emulator)  # kept: the pager needs its client open
    tags = {parse_tag(job.display_name) for job in client.batches.list()}
    assert len({tag.project for tag in tags if tag is not None}) == 2

    destroyed = other.run("destroy", "--auto-approve")

    assert destroyed.returncode == 0, destroyed.stderr
    assert client.batches.get(name=theirs).state.name == "JOB_STATE_CANCELLED"
    assert client.batches.get(name=ours).state.name != "JOB_STATE_CANCELLED"
    assert project.run("plan", "--detailed-exitcode").returncode == 0


def test_destroy_means_destroyed_and_a_later_apply_creates_fresh_jobs(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(job_seconds=60)
    _eval(project)
    assert _apply(project, "--no-wait").returncode == 0
    destroyed_job = _job_of(project)

    destroyed = project.run("destroy", "--auto-approve")

    assert destroyed.returncode == 0, destroyed.stderr
    said = destroyed.stdout + destroyed.stderr
    assert "destroy" in said and "manifest removed" not in said, said
    emulator.configure(job_seconds=0.5)
    again = _apply(project)
    assert again.returncode == 0, again.stderr
    assert "adopt" not in (again.stdout + again.stderr).lower()
    fresh = _job_of(project)
    assert fresh != destroyed_job
    assert _apply(project).returncode == 0, "a later apply must not fail on the destroyed job"
    assert project.run("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.parametrize("damage", ["deleted", "edited"])
def test_results_missing_or_changed_on_disk_are_drift_that_apply_restores(
    project: Project, damage: str
) -> None:
    _eval(project)
    assert _apply(project).returncode == 0
    output = project.root / "results/eval.jsonl"
    recorded = project.state()["resources"]["eval"]["results"]["sha256"]
    if damage == "deleted":
        output.unlink()
    else:
        output.write_text(output.read_text().replace("prompt", "PROMPT"))

    plan = project.run("plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "results" in plan.stdout and "eval" in plan.stdout
    restored = _apply(project)

    assert restored.returncode == 0, restored.stderr
    assert hashlib.sha256(output.read_bytes()).hexdigest() == recorded
    assert project.run("plan", "--detailed-exitcode").returncode == 0
    status = project.run("results", "eval", "--print")
    assert status.returncode == 0 and "prompt 0" in status.stdout


@pytest.mark.parametrize("gone", ["results-file", "job"])
def test_results_gone_from_disk_and_service_are_named_with_a_way_out(
    project: Project, emulator: EmulatorHandle, gone: str
) -> None:
    # Expiry is simulated by deleting the results file, which the service (and the emulator by
    # default) refuses for its 42-character id (python-genai #1759): allowed for this test, apply
    # deletes it itself once the results are collected (`cleanup.results`).
    emulator.configure(undeletable_result_files=False)
    _eval(project)
    assert _apply(project).returncode == 0
    client = service_client(emulator)
    job = client.batches.get(name=_job_of(project))
    assert job.dest is not None and job.dest.file_name
    if gone == "job":  # as 48 hours after it ended: the job and its results file are gone
        client.batches.delete(name=job.name)
    assert job.dest.file_name not in {f.name for f in client.files.list()}
    (project.root / "results/eval.jsonl").unlink()

    plan = project.run("plan", "--detailed-exitcode")
    applied = _apply(project)

    # The plan sees a missing job at once; a job still listed is found out by apply's check.
    runs = (plan, applied) if gone == "job" else (applied,)
    for run in runs:
        said = run.stdout + run.stderr
        assert "results/eval.jsonl" in said and "no longer" in said, said
        assert "--replace eval" in said
    assert applied.returncode == 1
    assert "Traceback" not in plan.stderr + applied.stderr
    printed = project.run("results", "eval", "--print")
    assert printed.returncode == 1 and "cannot be read" in printed.stderr
    assert "Internal error" not in printed.stderr
    replaced = project.run("apply", "--auto-approve", "--wait", "--replace", "eval")
    assert replaced.returncode == 0, replaced.stderr
    assert (project.root / "results/eval.jsonl").exists()


def test_inline_responses_without_their_keys_are_never_written_under_guessed_keys(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(shuffle_inline_responses=True)
    requests = "".join(
        f"      - key: q{i}\n        request: {{contents: [{{parts: [{{text: 'question {i}'}}]}}]}}\n"
        for i in range(8)
    )
    project.manifest(
        "inline",
        f"  model: gemini-2.5-flash\n  source:\n    requests:\n{requests}"
        "  output: results/inline.jsonl\n",
    )
    project.commit()

    failed = _apply(project)

    assert failed.returncode == 1
    assert "inline" in failed.stderr and "key" in failed.stderr, failed.stderr
    output = project.root / "results/inline.jsonl"
    assert not output.exists(), "responses were written under keys that were guessed"
    kept = list((project.root / ".reconciler").rglob("*unmatched*"))
    assert kept, "the raw responses must be kept"

    emulator.configure(shuffle_inline_responses=False)
    again = _apply(project)
    assert again.returncode == 0, again.stderr
    for line in output.read_text().splitlines():
        result = json.loads(line)
        text = result["response"]["candidates"][0]["content"]["parts"][0]["text"]
        assert f"question {result['key'][1:]}" in text


def test_image_file_names_are_distinct_bounded_and_portable(project: Project) -> None:
    keys = ["a/b", "a_b", "a?b", "x" * 300, "ünïcode key"]
    project.write(
        "data/images.jsonl",
        jsonl(
            [{"key": key, "request": text_request(f"picture {i}")} for i, key in enumerate(keys)]
        ),
    )
    project.manifest(
        "images",
        file_job_spec("data/images.jsonl", "results/images/", model="gemini-2.5-flash-image"),
    )
    project.commit()

    applied = _apply(project)

    assert applied.returncode == 0, applied.stderr
    folder = project.root / "results/images"
    lines = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    files: dict[str, str] = {}
    for line in lines:
        parts = line["response"]["candidates"][0]["content"]["parts"]
        files[line["key"]] = next(p["file"]["path"] for p in parts if "file" in p)
    assert sorted(files) == sorted(keys)
    assert len(set(files.values())) == len(keys), files
    for name in files.values():
        assert len(name) <= 100 and re.fullmatch(r"[A-Za-z0-9._-]+", name), name
        assert (folder / name).read_bytes().startswith(PNG_SIGNATURE)


def _job_recorded(project: Project) -> bool:
    if not (project.root / "state/reconciler.state.json").exists():
        return False
    attempts = project.state()["resources"].get("eval", {}).get("attempts", [])
    return bool(attempts and attempts[0]["job_name"])


def test_a_lost_state_write_stops_apply_at_once(project: Project, emulator: EmulatorHandle) -> None:
    # The job runs until the test cancels it, after the other writer wrote: however slow the
    # machine, the apply meets the lost write at its next step (recording the job's end).
    emulator.configure(job_seconds=3600)
    _eval(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"RECONCILER_ENDPOINT": project.endpoint, "NO_COLOR": "1"})
    waiting = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "-C", str(project.root), "apply", "--auto-approve",
         "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        text=True,
    )  # fmt: skip
    try:
        lock = project.root / "state/reconciler.state.json.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _job_recorded(project):
                break
            time.sleep(0.05)
        lock_id = json.loads(lock.read_text())["id"]
        assert project.run("force-unlock", "--force", lock_id).returncode == 0
        assert project.run("state", "rm", "eval").returncode == 0  # someone else writes
        client = service_client(emulator)  # kept: the pager needs its client open
        job_name = next(job.name for job in client.batches.list())
        assert job_name is not None
        client.batches.cancel(name=job_name)

        _, err = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.send_signal(signal.SIGKILL)
            waiting.wait()
    assert waiting.returncode == 1, err
    assert "state" in err and ("stale" in err or "lost" in err), err
