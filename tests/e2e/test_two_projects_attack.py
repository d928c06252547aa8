"""Two reconciler projects and a person's own jobs on one service, through the REST listing
(`batches.list` pages walked by page token): project A's plan, apply, cleanup and destroy
--prune never take as their own, cancel, adopt or delete what B (or a person) made, even when
both projects name their resources and specs alike and A's own job sits pages deep in the
listing; `import` of B's job is refused without --take-over, and a hand-made job is imported
only when it is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, git, jsonl, service_client, text_request

HAND_MADE = 105
"""Jobs a person made beside each project's, on each side of A's own: more than a page (the
adapter asks for 100 a page), so A's job is found only by following the page token."""
OPEN = {"JOB_STATE_PENDING", "JOB_STATE_RUNNING"}


def _write_manifests(project: Project) -> None:
    project.write("data/poems.jsonl", jsonl([{"key": "a", "request": text_request("a poem")}]))
    project.manifest("poems", file_job_spec("data/poems.jsonl", "results/poems.jsonl"))


def _other_project(project: Project, tmp_path: Path) -> Project:
    root = tmp_path / "other-repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    other = Project(root, project.endpoint)
    other.write("reconciler.yaml", (project.root / "reconciler.yaml").read_text())
    return other


def _hand_made(client: Any, count: int) -> list[str]:
    """Jobs made with the SDK as a person would, named like the projects' resource."""
    names = []
    for _ in range(count):
        job = client.batches.create(
            model="gemini-2.5-flash",
            src=[{"contents": [{"parts": [{"text": "mine"}], "role": "user"}]}],
            config={"display_name": "poems"},
        )
        names.append(job.name)
    return names


def _jobs(client: Any) -> dict[str, Any]:
    return {job.name: job for job in client.batches.list(config={"page_size": 100})}


def _files(client: Any) -> set[str]:
    return {file.name for file in client.files.list(config={"page_size": 100})}


def _attempt(project: Project) -> dict[str, Any]:
    attempts = project.state()["resources"]["poems"]["attempts"]
    assert len(attempts) == 1, attempts
    attempt: dict[str, Any] = attempts[0]
    return attempt


@pytest.mark.slow  # two projects' applies, 210 jobs made by hand, destroy and imports
def test_a_project_never_touches_another_projects_or_a_persons_jobs_and_files(
    project: Project, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(undeletable_result_files=False, max_concurrent_jobs=1_000)
    client = service_client(emulator)
    theirs = _other_project(project, tmp_path)
    _write_manifests(theirs)
    _write_manifests(project)  # the same resource, spec and input: tags differ by project alone

    emulator.configure(job_seconds=3_600)  # B's job runs for the whole test
    made = theirs.run("apply", "--auto-approve", "--no-wait")
    assert made.returncode == 0, made.stderr
    their_job, their_input = _attempt(theirs)["job_name"], _attempt(theirs)["input_file"]

    emulator.configure(job_seconds=0.6)
    before = _hand_made(client, HAND_MADE)
    planned = project.run("plan")
    assert planned.returncode == 0, planned.stderr
    assert "1 to create" in planned.stdout, planned.stdout
    created = project.run("apply", "--auto-approve", "--no-wait")
    assert created.returncode == 0, created.stderr
    our_job = _attempt(project)["job_name"]
    after = _hand_made(client, HAND_MADE)
    assert our_job not in {*before, *after, their_job}

    converged = project.run("apply", "--auto-approve", "--wait")

    assert converged.returncode == 0, converged.stderr
    ours = _attempt(project)
    assert ours["job_name"] == our_job and ours["state"] == "SUCCEEDED"  # found pages deep
    assert ours["input_deleted_at"] is not None  # its own cleanup ran ...
    jobs = _jobs(client)
    assert jobs[their_job].state.name in OPEN  # ... and left B's job running
    assert their_input in _files(client)
    assert {*before, *after} <= set(jobs)
    assert emulator.calls().get("batches.cancel", 0) == 0

    destroyed = project.run("destroy", "--auto-approve", "--prune")

    assert destroyed.returncode == 0, destroyed.stderr
    jobs = _jobs(client)
    assert jobs[their_job].state.name in OPEN
    assert their_input in _files(client)
    assert {*before, *after} <= set(jobs)
    assert emulator.calls().get("batches.cancel", 0) == 0

    refused = project.run("import", "poems", their_job)

    assert refused.returncode == 1, refused.stderr
    assert "belongs to another reconciler project" in refused.stderr
    assert "--take-over" in refused.stderr
    assert "poems" not in project.state()["resources"]

    named = project.run("import", "poems", after[-1])

    assert named.returncode == 0, named.stderr
    assert _attempt(project)["job_name"] == after[-1]
    replanned = project.run("plan")
    assert replanned.returncode == 0, replanned.stderr
    assert their_job not in replanned.stdout
    assert not any(job in replanned.stdout for job in [*before, *after[:-1]])
