"""The view reads only inside the project: `..`, absolute paths and symlinks pointing out are
refused, whatever the state, a manifest, a results line or a URL names."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.ui.files import existing_file, inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "results" / "images").mkdir(parents=True)
    (project / "results" / "images" / "a.png").write_bytes(b"png")
    (project / "results" / "out.jsonl").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("outside")
    return project


def test_a_file_inside_the_project_is_found(root: Path) -> None:
    assert existing_file(root, "results/out.jsonl") == (root / "results" / "out.jsonl").resolve()


@pytest.mark.parametrize(
    "relative",
    ["../secret.txt", "results/../../secret.txt", "/etc/passwd", "", "C:/Windows/win.ini"],
)
def test_paths_that_leave_the_project_are_refused(root: Path, relative: str) -> None:
    assert inside(root, relative) is None


def test_a_symlink_pointing_out_of_the_project_is_refused(root: Path) -> None:
    (root / "results" / "images" / "leak.png").symlink_to(root.parent / "secret.txt")
    assert existing_file(root, "results/images/leak.png") is None


def test_a_path_must_stay_inside_the_folder_it_is_relative_to(root: Path) -> None:
    images = root / "results" / "images"
    assert existing_file(root, "a.png", within=images) is not None
    assert existing_file(root, "../out.jsonl", within=images) is None
