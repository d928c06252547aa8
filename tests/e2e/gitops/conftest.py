"""Fixtures for the GitOps tests (helpers in gitops_support.py, beside this file)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitops_support import EVAL_MANIFEST, GitOpsRepo, git, request_line


@pytest.fixture
def gitops_repo(tmp_path: Path) -> Iterator[GitOpsRepo]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    runner = tmp_path / "runner"
    runner.mkdir()
    repo = GitOpsRepo(root, remote, runner)
    repo.write(
        "reconciler.yaml",
        "endpoint: emulator\nemulator:\n  job_seconds: 0.5\n"
        "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n",
    )
    repo.write(".gitignore", ".reconciler/\nresults/\n*.lock\n*.backup\n")
    repo.write("manifests/eval.yaml", EVAL_MANIFEST)
    repo.write(
        "data/eval.jsonl", request_line("q1", "What is 2+2?") + request_line("q2", "Name a colour.")
    )
    repo.commit("Add the eval job")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    yield repo
