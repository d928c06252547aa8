"""Two repositories on one PostgreSQL database never share a state row by accident."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from reconciler.config import Project, ProjectConfig
from reconciler.errors import ConfigError, StateError
from reconciler.state.registry import open_backend
from tests.integration.state.helpers import record

pytestmark = pytest.mark.postgres


def repository(root: Path, url: str, project_id: str | None) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    return Project(root=root, config=ProjectConfig(state=url, project=project_id), config_path=None)


def test_two_projects_on_one_database_each_get_their_own_state(
    tmp_path: Path, postgres_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    first = open_backend(repository(tmp_path / "a", postgres_url, f"evals-{suffix}"))
    second = open_backend(repository(tmp_path / "b", postgres_url, f"labels-{suffix}"))
    try:
        first.write(first.read().with_resource(record("eval", attempts=1)), 0)
        theirs = second.read()
        assert theirs.resources == {}, "the second project read the first one's records"
        assert theirs.project == f"labels-{suffix}"
        assert first.read().project == f"evals-{suffix}"
    finally:
        first.close()
        second.close()


def test_a_shared_workspace_is_refused_to_a_project_of_another_id(
    tmp_path: Path, postgres_url: str
) -> None:
    url = f"{postgres_url}?workspace=shared-{uuid.uuid4().hex[:8]}"
    first = open_backend(repository(tmp_path / "a", url, "evals"))
    try:
        first.write(first.read().with_resource(record("eval", attempts=1)), 0)
    finally:
        first.close()
    for other in ("labels", None):
        second = open_backend(repository(tmp_path / "b", url, other))
        try:
            with pytest.raises(StateError, match="belongs to project `evals`"):
                second.read()
        finally:
            second.close()


def test_a_database_url_without_workspace_needs_a_project_id(
    tmp_path: Path, postgres_url: str
) -> None:
    with pytest.raises(ConfigError, match="names no workspace"):
        open_backend(repository(tmp_path / "a", postgres_url, None))
