"""What `reconciler ui` reads per page: the state every time, the service at most every
`LIVE_CACHE_SECONDS` (on a fake clock), again at once when the state changed, and a failure
to read it kept as briefly and shown instead of an error page."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.ui_cmd import LIVE_CACHE_SECONDS, _Reader
from reconciler.clock import FakeClock
from reconciler.config import load_project
from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.state.backend import LockInfo
from reconciler.state.registry import open_backend


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator") as handle:
        yield handle


def _reader(root: Path, endpoint: str, clock: FakeClock) -> _Reader:
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text("manifests: manifests\nstate: state.json\n")
    return _Reader(load_project(root, overrides={"endpoint": endpoint}), clock)


def test_page_loads_within_the_cache_time_list_the_service_once(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    clock = FakeClock()
    reader = _reader(tmp_path / "p", emulator.base_url, clock)

    first = reader.snapshot(True)
    reader.snapshot(True)
    assert emulator.calls()["batches.list"] == 1
    assert first.live is not None and first.live_error is None

    clock.advance(LIVE_CACHE_SECONDS)
    reader.snapshot(True)
    assert emulator.calls()["batches.list"] == 2


def test_a_changed_state_reads_the_service_again_at_once(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    reader = _reader(tmp_path / "p", emulator.base_url, FakeClock())
    reader.snapshot(True)
    backend = open_backend(reader.project)
    with backend.lock(LockInfo.new("test")):
        state = backend.read()
        backend.write(state.model_copy(update={"tombstones": {"gone": 1}}), state.serial)

    reader.snapshot(True)

    assert emulator.calls()["batches.list"] == 2


def test_an_unreachable_service_is_a_note_on_the_snapshot_not_an_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    reader = _reader(tmp_path / "p", closed, FakeClock())

    snapshot = reader.snapshot(True)

    assert snapshot.live is None and snapshot.plan is None
    assert snapshot.live_error is not None
    assert "cannot reach 127.0.0.1: connection refused" in snapshot.live_error
