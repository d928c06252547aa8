"""`ProjectPaths` resolves a path from its folder (resolved once per run) and its last part:
the answers must be those of resolving the whole path, symlinks anywhere included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.manifests.paths import ProjectPaths

RELATIVES = (
    "data/in.jsonl",
    "data/missing.jsonl",
    "absent/folder/x.jsonl",
    "link-in/in.jsonl",
    "link-out/in.jsonl",
    "data/file-link-out",
    "data/file-link-in",
    "data/loop",
    "data/../data/in.jsonl",
    "data/..",
    "data/.",
    "data/",
    "./data//in.jsonl",
    "chain/in.jsonl",
    "/etc/hostname",
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    outside = tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (root / "data" / "in.jsonl").write_text("{}\n")
    (outside / "in.jsonl").write_text("{}\n")
    (root / "link-in").symlink_to(root / "data")
    (root / "link-out").symlink_to(outside)
    (root / "chain").symlink_to("link-in")
    (root / "data" / "file-link-out").symlink_to(outside / "in.jsonl")
    (root / "data" / "file-link-in").symlink_to(root / "data" / "in.jsonl")
    (root / "data" / "loop").symlink_to("loop")
    return root


@pytest.mark.parametrize("relative", RELATIVES)
def test_a_path_resolves_as_resolving_the_whole_path_does(tree: Path, relative: str) -> None:
    where = ProjectPaths(tree)
    # Twice: the second answer comes from the folder resolved by the first.
    for _ in range(2):
        assert where.resolve(relative) == os.path.realpath(tree / relative)


def test_a_symlink_out_of_the_root_is_refused_in_the_folder_or_the_last_part(tree: Path) -> None:
    where = ProjectPaths(tree)
    assert where.confine("data/in.jsonl") == ((tree / "data" / "in.jsonl").resolve(), None)
    assert where.confine("link-in/in.jsonl")[0] == (tree / "data" / "in.jsonl").resolve()
    for relative in ("link-out/in.jsonl", "data/file-link-out", "../outside/in.jsonl"):
        target, problem = where.confine(relative)
        assert target is None and problem is not None and "outside the project root" in problem


def test_a_path_is_shown_relative_to_the_root_and_others_in_full(tree: Path) -> None:
    where = ProjectPaths(tree)
    assert where.shown(where.root / "data" / "in.jsonl") == "data/in.jsonl"
    assert where.shown(Path("/etc/hostname")) == "/etc/hostname"
    sibling = where.root.parent / (where.root.name + "-other") / "x"
    assert where.shown(sibling) == str(sibling)
