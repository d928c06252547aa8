"""Garbage collection of the blob store, against the local file and PostgreSQL alike: blobs no
record refers to go, referred ones stay, a collection cut short by a kill leaves a state that
reads, and releasing a lock under which a command wrote collects."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import signal
from pathlib import Path

from reconciler.state import codec
from reconciler.state.backend import Blob, LockInfo, StateBackend
from reconciler.state.document import ResourceRecord, State
from reconciler.state.registry import open_backend
from reconciler.state.request_keys import (
    KEY_DIGESTS_BLOB,
    REQUEST_KEYS_BLOB,
    key_digests_blob,
    request_keys_blob,
)
from reconciler.state.stored_form import DETAILS_BLOB
from tests.integration.state.helpers import OpenBackend, project_for, record

FORK = multiprocessing.get_context("fork")


def _orphan(n: int) -> Blob:
    data = f'["orphan-{n}"]'.encode()
    return Blob(REQUEST_KEYS_BLOB, hashlib.sha256(data).hexdigest(), data)


def _with_blobs(backend: StateBackend, name: str, spec: str, keys: list[str]) -> ResourceRecord:
    """A record whose details, key digests and request keys are all stored blobs."""
    digests = key_digests_blob({key: spec[:16] for key in keys})
    asked = request_keys_blob(keys)
    backend.put_blobs((digests, asked))
    base = record(name, spec * 64, attempts=1)
    attempt = base.attempts[0].model_copy(update={"request_keys_file": asked.sha256})
    return base.model_copy(update={"key_digests_ref": digests.sha256, "attempts": (attempt,)})


def _addresses(state: State, name: str) -> dict[str, str]:
    """The blobs record `name` refers to, by kind."""
    rec = state.resources[name]
    details = codec.record_blob(rec)
    assert details is not None and rec.key_digests_ref and rec.attempts[0].request_keys_file
    return {
        DETAILS_BLOB: details.sha256,
        KEY_DIGESTS_BLOB: rec.key_digests_ref,
        REQUEST_KEYS_BLOB: rec.attempts[0].request_keys_file,
    }


def _present(backend: StateBackend, blobs: dict[str, str]) -> dict[str, bool]:
    return {kind: backend.get_blob(kind, address) is not None for kind, address in blobs.items()}


def test_collection_deletes_blobs_no_record_refers_to_and_keeps_the_rest(
    open_state: OpenBackend,
) -> None:
    backend = open_state()
    first = backend.write(
        backend.read()
        .with_resource(_with_blobs(backend, "a", "1", ["k1", "k2"]))
        .with_resource(_with_blobs(backend, "b", "2", ["k3"])),
        0,
    )
    backend.put_blobs([_orphan(1)])
    old_a, old_b = _addresses(first, "a"), _addresses(first, "b")
    # Two more versions: `a` moves to a new spec and source, `b` goes; the last adds `c`. (The
    # local backend keeps the blobs of its backup, the version before the last, too.)
    second = backend.write(
        first.without_resource("b").with_resource(_with_blobs(backend, "a", "3", ["k1"])), 1
    )
    third = backend.write(second.with_resource(_with_blobs(backend, "c", "4", ["k9"])), 2)

    with backend.lock(LockInfo.new("reconciler state gc")):
        collected = open_state().collect_garbage()

    assert collected.skipped is None
    assert collected.removed == 7  # a's and b's first blobs (3 kinds each) and the orphan
    assert collected.kept == 6
    reader = open_state()
    assert reader.read() == third
    assert _present(reader, _addresses(third, "a")) == dict.fromkeys(old_a, True)
    assert _present(reader, _addresses(third, "c")) == dict.fromkeys(old_a, True)
    assert _present(reader, old_a) == dict.fromkeys(old_a, False)
    assert _present(reader, old_b) == dict.fromkeys(old_b, False)
    assert reader.get_blob(REQUEST_KEYS_BLOB, _orphan(1).sha256) is None
    # Nothing more to collect; a blob stored again after its collection is found again.
    with backend.lock(LockInfo.new("reconciler state gc")):
        assert open_state().collect_garbage().removed == 0
    # A record that comes back after its blobs were collected stores them again (the local
    # backend must not remember them as present).
    again = backend.write(third.with_resource(_with_blobs(backend, "b", "2", ["k3"])), 3)
    assert again.resources["b"] == first.resources["b"]
    assert open_state().read() == again


def test_releasing_a_lock_collects_only_after_a_write(open_state: OpenBackend) -> None:
    backend = open_state()
    state = backend.write(backend.read().with_resource(record("a")), 0)
    backend.put_blobs([_orphan(1)])
    with backend.lock(LockInfo.new("reconciler plan")):
        backend.read()  # a command that only reads collects nothing
    assert backend.get_blob(REQUEST_KEYS_BLOB, _orphan(1).sha256) is not None
    with backend.lock(LockInfo.new("reconciler apply")):
        backend.write(state.with_resource(record("b")), state.serial)
    assert open_state().get_blob(REQUEST_KEYS_BLOB, _orphan(1).sha256) is None
    assert open_state().read().resources.keys() == {"a", "b"}


def _collect_and_die_midway(setting: str, root: str) -> None:
    backend = open_backend(project_for(Path(root), setting))
    backend._on_collecting = lambda: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[attr-defined]
    with backend.lock(LockInfo.new("reconciler state gc")):
        backend.collect_garbage()


def test_collection_killed_midway_leaves_a_state_that_reads_and_the_next_one_finishes(
    open_state: OpenBackend, state_setting: str, tmp_path: Path
) -> None:
    backend = open_state()
    stored = backend.write(backend.read().with_resource(_with_blobs(backend, "a", "1", ["k"])), 0)
    orphans = [_orphan(n) for n in range(5)]
    backend.put_blobs(orphans)
    child = FORK.Process(target=_collect_and_die_midway, args=(state_setting, str(tmp_path)))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    reader = open_state()
    assert reader.read() == stored
    assert _present(reader, _addresses(stored, "a")) == dict.fromkeys(_addresses(stored, "a"), True)
    with reader.lock(LockInfo.new("reconciler state gc"), timeout=10):
        collected = reader.collect_garbage()
    assert collected.kept == 3
    assert all(reader.get_blob(o.kind, o.sha256) is None for o in orphans)
    assert open_state().read() == stored


def test_local_collection_keeps_what_the_backup_refers_to(tmp_path: Path) -> None:
    path = tmp_path / "state" / "reconciler.state.json"
    backend = open_backend(project_for(tmp_path, str(path)))
    first = backend.write(backend.read().with_resource(_with_blobs(backend, "a", "1", ["k"])), 0)
    backend.write(first.with_resource(_with_blobs(backend, "a", "2", ["k"])), 1)
    with backend.lock(LockInfo.new("reconciler state gc")):
        assert backend.collect_garbage().removed == 0  # the backup is the first version
    shutil.copy(path.with_name(path.name + ".backup"), path)
    assert open_backend(project_for(tmp_path, str(path))).read() == first


def test_local_collection_leaves_a_blob_directory_another_state_shares(tmp_path: Path) -> None:
    ours = open_backend(project_for(tmp_path, "state/ours.state.json"))
    theirs = open_backend(project_for(tmp_path, "state/theirs.state.json"))
    with theirs.lock(LockInfo.new("reconciler apply")):
        theirs.write(theirs.read().with_resource(_with_blobs(theirs, "t", "9", ["k"])), 0)
    ours.write(ours.read().with_resource(record("o")), 0)
    with ours.lock(LockInfo.new("reconciler state gc")):
        collected = ours.collect_garbage()
    assert collected.removed == 0
    assert collected.skipped is not None and "theirs.state.json" in collected.skipped
    assert open_backend(project_for(tmp_path, "state/theirs.state.json")).read().resources["t"]


def test_local_collection_is_not_stopped_by_lock_files_of_other_tools(tmp_path: Path) -> None:
    (tmp_path / "Pipfile").write_text("[packages]\n")
    (tmp_path / "Pipfile.lock").write_text("{}\n")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    backend = open_backend(project_for(tmp_path, "reconciler.state.json"))
    backend.write(backend.read().with_resource(record("a")), 0)
    backend.put_blobs([_orphan(1)])
    with backend.lock(LockInfo.new("reconciler state gc")):
        collected = backend.collect_garbage()
    assert collected.skipped is None and collected.removed == 1


def test_a_local_read_racing_a_collection_reads_the_new_state_again(tmp_path: Path) -> None:
    setting = "state/reconciler.state.json"
    writer = open_backend(project_for(tmp_path, setting))
    state = writer.write(writer.read().with_resource(record("a", "1" * 64)), 0)
    reader = open_backend(project_for(tmp_path, setting))
    details = reader._details  # type: ignore[attr-defined]
    raced: list[bool] = []

    def racing(addresses: object) -> object:
        # Between reading the document and its blobs, two commands change `a` (the second
        # version's blobs outlive the backup) and collect the first version's blob.
        if not raced:
            raced.append(True)
            current = state
            for spec in ("2", "3"):
                with writer.lock(LockInfo.new("reconciler apply")):
                    current = writer.write(
                        current.with_resource(record("a", spec * 64)), current.serial
                    )
        return details(addresses)

    reader._details = racing  # type: ignore[attr-defined]
    assert reader.read().resources["a"].spec_hash == "3" * 64
    assert raced
