"""Media uploads (local images a request names by `fileData.path`) are recorded with the job
that reads them and deleted as its input is, once its results are collected; one a killed run
uploaded but never recorded is found again and ends up deleted too."""

from __future__ import annotations

import signal
from typing import Any

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def _service_files(emulator: EmulatorHandle) -> list[Any]:
    client = service_client(emulator)  # held: its pager reads through it
    return list(client.files.list())


def _media_project(project: Project) -> None:
    (project.root / "images").mkdir()
    (project.root / "images/cat.png").write_bytes(PNG)
    parts = [
        {"text": "Describe"},
        {"fileData": {"path": "images/cat.png", "mimeType": "image/png"}},
    ]
    project.write(
        "data/mm.jsonl", jsonl([{"key": "cat", "request": {"contents": [{"parts": parts}]}}])
    )
    project.manifest("pets", file_job_spec("data/mm.jsonl", "results/pets.jsonl"))
    project.commit()


def test_a_media_upload_is_recorded_with_its_job_and_deleted_after_collection(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(undeletable_result_files=False)
    _media_project(project)

    applied = project.run("apply", "--auto-approve", "--no-wait")

    assert applied.returncode == 0, applied.stderr
    (attempt,) = project.state()["resources"]["pets"]["attempts"]
    (media,) = attempt["media"]
    assert media["deleted_at"] is None and media["expires_at"] is not None
    assert media["file_name"] in {f.name for f in _service_files(emulator)}

    collected = project.run("apply", "--auto-approve", "--wait")

    assert collected.returncode == 0, collected.stderr
    (attempt,) = project.state()["resources"]["pets"]["attempts"]
    assert attempt["media"][0]["deleted_at"] is not None
    assert _service_files(emulator) == []
    assert project.run("plan", "--detailed-exitcode").returncode == 0


def test_media_a_killed_run_uploaded_is_found_again_not_uploaded_twice(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(undeletable_result_files=False)
    _media_project(project)

    killed = project.run(
        "apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: "media-uploaded"}
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (orphan,) = _service_files(emulator)
    assert "pets" not in project.state()["resources"]  # never recorded

    again = project.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    (attempt,) = project.state()["resources"]["pets"]["attempts"]
    assert [m["file_name"] for m in attempt["media"]] == [orphan.name]
    calls = emulator.calls()
    uploads = calls.get("files.upload_start", 0) + calls.get("files.upload_multipart", 0)
    assert uploads == 2  # the image once (the run was killed right after), then the input
    assert _service_files(emulator) == []


def test_plan_lists_media_left_to_delete(project: Project, emulator: EmulatorHandle) -> None:
    """Killed after deleting the media and before recording it: the plan names the media."""
    emulator.configure(undeletable_result_files=False)
    _media_project(project)

    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: "input-deleted"})

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (attempt,) = project.state()["resources"]["pets"]["attempts"]
    planned = project.run("plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout
    assert (
        f"delete media file {attempt['media'][0]['file_name']} of pets attempt 1" in planned.stdout
    )
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    assert project.run("plan", "--detailed-exitcode").returncode == 0
