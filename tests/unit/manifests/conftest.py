"""Fixtures for the manifest tests: the fixture project, and an empty project in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import Project, load_project

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"


@pytest.fixture
def fixture_project() -> Project:
    return load_project(FIXTURE_PROJECT, environ={})


@pytest.fixture
def tmp_project(tmp_path: Path) -> Project:
    """An empty project in a temporary directory (reconciler.yaml + manifests/ + data/)."""
    (tmp_path / "reconciler.yaml").write_text("endpoint: emulator\n")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "data").mkdir()
    return load_project(tmp_path, environ={})


@pytest.fixture
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test's own, where the parse and scan caches keep their key."""
    home = tmp_path / "user-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home
