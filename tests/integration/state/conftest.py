"""Fixtures for the state backend suites: a backend setting per backend, and how to open it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# `tests.fixtures` must import whether pytest runs as `pytest` or `python -m pytest`.
_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from reconciler.state.backend import StateBackend  # noqa: E402
from reconciler.state.registry import open_backend  # noqa: E402
from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: E402, F401
from tests.integration.state.helpers import OpenBackend, project_for  # noqa: E402


@pytest.fixture(params=["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The `state:` setting of a fresh, empty state in each backend."""
    if request.param == "local":
        return str(tmp_path / "state" / "reconciler.state.json")
    base: str = request.getfixturevalue("postgres_url")
    return f"{base}?workspace=t-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def open_state(state_setting: str, tmp_path: Path) -> Iterator[OpenBackend]:
    """Open (and later close) backends on `state_setting`; keyword args go to open_backend."""
    opened: list[StateBackend] = []

    def _open(**kwargs: object) -> StateBackend:
        backend = open_backend(project_for(tmp_path, state_setting), **kwargs)  # type: ignore[arg-type]
        opened.append(backend)
        return backend

    yield _open
    for backend in opened:
        backend.close()
