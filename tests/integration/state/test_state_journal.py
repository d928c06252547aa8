"""The local backend's journal: a locked command's writes are appended lines, folded on release."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from reconciler.state import journal
from reconciler.state import local as local_module
from reconciler.state.backend import LockInfo
from reconciler.state.document import State
from reconciler.state.migrations import StateFormatError
from tests.integration.state.helpers import decode_file, local, record, write_file

FORK = multiprocessing.get_context("fork")


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


def _locked_journal_of_three(path: Path) -> tuple[State, bytes]:
    """A journal of three acknowledged entries, as a writer killed under the lock leaves it."""
    state = _started(path)
    document = path.read_bytes()
    writer = local(path)
    with writer.lock(LockInfo.new("apply")):
        for name in ("c", "d", "e"):
            state = writer.write(state.with_resource(record(name)), state.serial)
        entries = _journal(path).read_bytes()
    path.write_bytes(document)  # undo the fold on release
    _journal(path).write_bytes(entries)
    return state, entries


@pytest.mark.parametrize("line", [0, 1], ids=["first-line", "middle-line"])
def test_a_damaged_line_before_acknowledged_entries_is_refused_not_dropped(
    tmp_path: Path, line: int
) -> None:
    path = tmp_path / "s.json"
    state, entries = _locked_journal_of_three(path)
    lines = entries.splitlines(keepends=True)
    flipped = bytearray(lines[line])
    flipped[80] ^= 0x01  # one bit of the body: the checksum no longer matches
    lines[line] = bytes(flipped)
    _journal(path).write_bytes(b"".join(lines))
    with pytest.raises(StateFormatError, match=rf"line {line + 1} of its journal .* damaged"):
        local(path).read()
    with pytest.raises(StateFormatError):  # a write must not cut the later entries off
        local(path).write(state, state.serial)
    assert _journal(path).read_bytes() == b"".join(lines)


def test_a_damaged_last_line_ending_in_a_newline_is_a_torn_write(tmp_path: Path) -> None:
    """A power cut can leave the last line's blocks zeroed: that write never returned."""
    path = tmp_path / "s.json"
    state, entries = _locked_journal_of_three(path)
    last = entries.splitlines(keepends=True)[-1]
    _journal(path).write_bytes(entries[: -len(last)] + b"\0" * (len(last) - 1) + b"\n")
    survived = local(path).read()
    assert set(survived.resources) == {"a", "b", "c", "d"}
    assert survived.serial == state.serial - 1


def _signed(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest().encode() + b" " + body + b"\n"


@pytest.mark.hostile_input
@pytest.mark.parametrize(
    ("journal_bytes", "words"),
    [
        (b"garbage\nmore garbage\n", r"line 1 of its journal .* damaged"),
        (b"\xff\xfe\x00\n" * 3, r"line 1 of its journal .* damaged"),
        (_signed(b"{not json"), r"line 1 of its journal .* not JSON"),
        (_signed(b"[" * 100_000 + b"]" * 100_000), r"line 1 of its journal .* not JSON"),
        (_signed(b"9" * 5000), r"line 1 of its journal .* not JSON"),
        (_signed(b"\xff\xfe"), r"line 1 of its journal .* not JSON"),
        (_signed(b"[1, 2]"), r"line 1 of its journal .* not an entry"),
        (_signed(b'{"serial": "9"}'), r"journal .* no integer serial"),
        (_signed(b'{"serial": 2, "lineage": "lin", "set": [], "unset": {}}'), r"without its"),
    ],
    ids=[
        "garbage-lines",
        "binary-lines",
        "signed-non-json",
        "signed-deep-json",
        "signed-huge-int",
        "signed-non-utf8",
        "signed-list",
        "signed-string-serial",
        "signed-wrong-shapes",
    ],
)
def test_a_hostile_journal_is_refused_with_a_message_naming_it(
    tmp_path: Path, journal_bytes: bytes, words: str
) -> None:
    path = tmp_path / "s.json"
    _started(path)
    _journal(path).write_bytes(journal_bytes)
    with pytest.raises(StateFormatError, match=words) as err:
        local(path).read()
    assert str(path) in err.value.message


def _fold_then_die_at(path: str, count: int, step: str) -> None:
    """Journal `count` writes under the lock, then die (SIGKILL) inside the fold on release:
    `replace` before the new document is renamed into place, `unlink` after it, before the
    journal is removed."""
    backend = local(Path(path))
    state = backend.read()
    real = getattr(os, step)

    def die_at_the_fold(target: Any, *args: Any, **kwargs: Any) -> Any:
        text = str(target)
        if (step == "unlink" and text.endswith(journal.SUFFIX)) or (
            step == "replace" and str(args[0]) == path
        ):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(target, *args, **kwargs)

    with backend.lock(LockInfo.new("doomed apply")):
        for i in range(count):
            state = backend.write(state.with_resource(record(f"k{i}")), state.serial)
        setattr(os, step, die_at_the_fold)  # this forked child only


@pytest.mark.parametrize("step", ["replace", "unlink"])
def test_a_writer_killed_while_folding_its_journal_loses_no_acknowledged_write(
    tmp_path: Path, step: str
) -> None:
    path = tmp_path / "s.json"
    _started(path)
    child = FORK.Process(target=_fold_then_die_at, args=(str(path), 4, step))
    child.start()
    child.join(20)
    assert child.exitcode == -signal.SIGKILL
    assert _journal(path).exists()
    after = local(path)
    state = after.read()
    assert {"a", "b", "k0", "k1", "k2", "k3"} == set(state.resources)
    with after.lock(LockInfo.new("next apply"), timeout=10):
        state = after.write(state.with_resource(record("next")), state.serial)
    assert not _journal(path).exists()
    assert decode_file(path) == state
    assert "next" in state.resources
