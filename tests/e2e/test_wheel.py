"""The acceptance test of packaging: the wheel built from a source tree without git metadata
(as from a source archive) installs into a clean venv, reports its fallback version, names only
gemini-batch-reconciler as a pip target, and `reconciler init && reconciler apply
--auto-approve --wait` works against the emulator (scripts/check_dist.sh, as the release
workflow runs it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _source_tree(dest: Path) -> Path:
    """The repository's tracked and new files, without .git: setuptools-scm must fall back."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.slow  # ~40 s: builds the wheel, installs it and its dependencies in a clean venv
def test_wheel_installs_cleanly_and_init_then_apply_works(tmp_path: Path) -> None:
    tree = _source_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-qq", "--no-deps", "-w", str(dist), str(tree)],
        check=True,
        timeout=240,
    )
    [wheel] = dist.glob("*.whl")
    assert wheel.name.startswith("gemini_batch_reconciler-0.0.0+unknown-")
    checked = subprocess.run(
        ["bash", str(REPO / "scripts" / "check_dist.sh"), str(dist), "0.0.0+unknown"],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "check_dist: init and apply --wait work from the wheel" in checked.stdout
