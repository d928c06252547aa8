"""The local backend's journal: a locked command's writes are appended lines, folded on release."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from reconciler.clock import SystemClock
from reconciler.state import journal
from reconciler.state import local as local_module
from reconciler.state.backend import LockInfo
from reconciler.state.document import State
from reconciler.state.local import LocalBackend
from reconciler.state.migrations import StateFormatError
from tests.integration.state.helpers import decode_file, record, write_file

FORK = multiprocessing.get_context("fork")


def local(path: Path) -> LocalBackend:
    return LocalBackend(
        path,
        clock=SystemClock(),
        lineage_factory=lambda: "lin",
        sleep=time.sleep,
        rng=random.Random(0),
    )


def _journal(path: Path) -> Path:
    return path.with_name(path.name + journal.SUFFIX)


def _started(path: Path) -> State:
    """A stored state of two records (written without the lock: straight to the file)."""
    backend = local(path)
    return backend.write(backend.read().with_resource(record("a")).with_resource(record("b")), 0)


def test_writes_under_the_lock_are_journaled_and_folded_into_the_file_on_release(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.json"
    state = _started(path)
    document = path.read_bytes()
    writer = local(path)
    with writer.lock(LockInfo.new("apply")):
        state = writer.write(state.with_resource(record("c")), state.serial)
        state = writer.write(state.without_resource("a"), state.serial)
        assert path.read_bytes() == document  # the document is not rewritten per write
        assert len(_journal(path).read_bytes().splitlines()) == 2
        assert local(path).read() == state  # another reader replays the journal
    assert not _journal(path).exists()
    assert decode_file(path) == state
    assert path.with_name("s.json.backup").read_bytes() == document  # the state before the lock


def test_a_torn_last_entry_is_ignored_and_cut_off_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = _started(path)
    writer = local(path)
    with writer.lock(LockInfo.new("apply")):
        state = writer.write(state.with_resource(record("c")), state.serial)
        whole = _journal(path).read_bytes()
        torn = journal.encode_entry(state, state.model_copy(update={"serial": state.serial + 1}))[0]
        with open(_journal(path), "ab") as f:
            f.write(torn[: len(torn) // 2])  # a write that never returned
        assert local(path).read() == state
        state = writer.write(state.with_resource(record("d")), state.serial)
        lines = _journal(path).read_bytes()
        assert lines.startswith(whole) and lines.count(b"\n") == 2
        assert local(path).read() == state


def test_entries_the_document_already_holds_are_skipped(tmp_path: Path) -> None:
    """A fold killed after renaming the new document, before removing the journal."""
    path = tmp_path / "s.json"
    before = _started(path)
    after = before.with_resource(record("c")).model_copy(update={"serial": before.serial + 1})
    write_file(path, after)
    _journal(path).write_bytes(journal.encode_entry(before, after)[0])
    assert local(path).read() == after


def test_a_journal_that_does_not_follow_the_document_is_refused_as_corrupt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.json"
    before = _started(path)
    later = before.with_resource(record("c")).model_copy(update={"serial": before.serial + 2})
    _journal(path).write_bytes(journal.encode_entry(before, later)[0])
    with pytest.raises(StateFormatError, match=r"journal .* does not follow the document") as err:
        local(path).read()
    assert err.value.hint is not None and "delete the `.journal` file" in err.value.hint


def test_a_journal_outgrowing_the_document_is_folded_while_the_lock_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "_JOURNAL_MIN", 0)  # the limit is then the document's size
    path = tmp_path / "s.json"
    state = _started(path)
    size = len(path.read_bytes())
    writer = local(path)
    with writer.lock(LockInfo.new("apply")):
        for i in range(10):
            state = writer.write(state.with_resource(record(f"r{i}", f"{i:064x}")), state.serial)
            assert not _journal(path).exists() or len(_journal(path).read_bytes()) <= size
            size = max(size, len(path.read_bytes()))
        folded = json.loads(path.read_bytes())["serial"]
        assert state.serial - 3 <= folded < state.serial  # folded along the way, not at the end
    assert local(path).read() == state


def _write_under_lock_then_die(path: str, count: int) -> None:
    backend = local(Path(path))
    state = backend.read()
    with backend.lock(LockInfo.new("doomed apply")):
        for i in range(count):
            state = backend.write(state.with_resource(record(f"k{i}")), state.serial)
        os.kill(os.getpid(), signal.SIGKILL)


def test_every_acknowledged_write_of_a_killed_locked_writer_survives(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    _started(path)
    child = FORK.Process(target=_write_under_lock_then_die, args=(str(path), 5))
    child.start()
    child.join(20)
    assert child.exitcode == -signal.SIGKILL
    assert _journal(path).exists()
    after = local(path)
    state = after.read()
    assert {f"k{i}" for i in range(5)} <= set(state.resources)
    with after.lock(LockInfo.new("next apply"), timeout=10):
        pass
    assert not _journal(path).exists()
    assert decode_file(path) == state
