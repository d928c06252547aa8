"""Fixtures of the apply stage tests: an in-process emulator and a project using it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorHandle, running_emulator
from tests.integration.apply.harness import Stages


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator", job_seconds=0.1) as emu:
        yield emu


@pytest.fixture
def stages(tmp_path: Path, emulator: EmulatorHandle) -> Stages:
    root = tmp_path / "repo"
    root.mkdir()
    return Stages(root, emulator)
