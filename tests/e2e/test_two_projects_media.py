"""Two projects on one service with the same image: media one project's killed run left at the
service is its own alone. The other project neither reuses it (its display name carries the
first project's token) nor deletes it when it cleans up its own; the first finds it again."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, git, service_client
from tests.e2e.test_media_uploads import _media_project


def _files(emulator: EmulatorHandle) -> dict[str, Any]:
    client = service_client(emulator)  # held: its pager reads through it
    return {f.name: f for f in client.files.list()}


@pytest.mark.slow  # four CLI runs
def test_media_a_killed_run_left_is_neither_reused_nor_deleted_by_another_project(
    project: Project, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(undeletable_result_files=False)
    root = tmp_path / "other-repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    other = Project(root, project.endpoint)
    other.write("reconciler.yaml", (project.root / "reconciler.yaml").read_text())
    _media_project(project)
    _media_project(other)

    killed = project.run(
        "apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: "media-uploaded"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ((orphan, left),) = _files(emulator).items()
    assert (left.display_name or "").startswith("rc-media-")

    theirs = other.run("apply", "--auto-approve", "--wait")

    assert theirs.returncode == 0, theirs.stderr
    (attempt,) = other.state()["resources"]["pets"]["attempts"]
    (media,) = attempt["media"]
    assert media["file_name"] != orphan and media["deleted_at"] is not None
    assert list(_files(emulator)) == [orphan]  # theirs cleaned up; ours untouched

    ours = project.run("apply", "--auto-approve", "--wait")

    assert ours.returncode == 0, ours.stderr
    (attempt,) = project.state()["resources"]["pets"]["attempts"]
    assert [m["file_name"] for m in attempt["media"]] == [orphan]
    assert _files(emulator) == {}
    assert (project.root / "results/pets.jsonl").is_file()
    assert (other.root / "results/pets.jsonl").is_file()
