"""Garbage collection beside what a collector must not take: a blobs directory shared with a
state checked out of git (no lock, backup or journal beside it, as `.gitignore` leaves
it), a state pushed back after a collection, and two PostgreSQL workspaces with the same blobs."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from reconciler.state import codec
from reconciler.state.backend import LockInfo, StateBackend
from reconciler.state.document import ResourceRecord
from reconciler.state.registry import open_backend
from reconciler.state.request_keys import key_digests_blob, request_keys_blob
from tests.integration.state.helpers import OpenBackend, project_for, record

FORK = multiprocessing.get_context("fork")


def _with_blobs(backend: StateBackend, name: str, spec: str, keys: list[str]) -> ResourceRecord:
    """A record whose details, key digests and request keys are all stored blobs."""
    digests = key_digests_blob({key: spec[:16] for key in keys})
    asked = request_keys_blob(keys)
    backend.put_blobs((digests, asked))
    base = record(name, spec * 64, attempts=1)
    attempt = base.attempts[0].model_copy(update={"request_keys_file": asked.sha256})
    return base.model_copy(update={"key_digests_ref": digests.sha256, "attempts": (attempt,)})


def test_local_collection_leaves_the_blobs_of_a_state_checked_out_without_its_working_files(
    tmp_path: Path,
) -> None:
    # Two projects keep their states in one directory of a repository. A fresh clone has the
    # state files and blobs/, but not the lock, backup or journal files `.gitignore` leaves out.
    theirs = open_backend(project_for(tmp_path, "state/theirs.state.json"))
    with theirs.lock(LockInfo.new("reconciler apply")):
        written = theirs.write(theirs.read().with_resource(_with_blobs(theirs, "t", "9", ["k"])), 0)
        theirs.write(written.with_resource(_with_blobs(theirs, "t", "8", ["j"])), written.serial)
    expected = open_backend(project_for(tmp_path, "state/theirs.state.json")).read()
    for working_file in ("theirs.state.json.lock", "theirs.state.json.backup"):
        (tmp_path / "state" / working_file).unlink()
    assert not list((tmp_path / "state").glob("theirs.state.json.*"))

    ours = open_backend(project_for(tmp_path, "state/ours.state.json"))
    with ours.lock(LockInfo.new("reconciler apply")):
        ours.write(ours.read().with_resource(record("o")), 0)  # releasing collects
    with ours.lock(LockInfo.new("reconciler state gc")):
        collected = ours.collect_garbage()

    assert collected.removed == 0
    assert collected.skipped is not None and "theirs.state.json" in collected.skipped
    assert open_backend(project_for(tmp_path, "state/theirs.state.json")).read() == expected


def test_a_state_pulled_before_collections_pushes_back_readable_after_them(
    open_state: OpenBackend,
) -> None:
    backend = open_state()
    first = backend.write(backend.read().with_resource(_with_blobs(backend, "a", "1", ["k"])), 0)
    pulled = codec.self_contained(first)
    # Two later versions move `a` on, so the first version's blobs are garbage and collected.
    current = first
    for spec in ("2", "3"):
        with backend.lock(LockInfo.new("reconciler apply")):
            current = backend.write(
                current.with_resource(_with_blobs(backend, "a", spec, ["k"])), current.serial
            )
    with backend.lock(LockInfo.new("reconciler state gc")):
        backend.collect_garbage()
    old_digests = first.resources["a"].key_digests_ref
    assert old_digests and backend.get_blob("key-digests", old_digests) is None
    # Pushing the old copy back (as `state push --force` does) stores the blobs it needs again.
    restored = codec.decode(pulled, source="pulled", blobs=lambda addresses: {})
    with backend.lock(LockInfo.new("reconciler state push")):
        backend.write(restored.model_copy(update={"serial": current.serial}), current.serial)
    with backend.lock(LockInfo.new("reconciler state gc")):
        backend.collect_garbage()
    reread = open_state().read()
    assert reread.resources["a"] == first.resources["a"]


@pytest.mark.postgres
def test_collecting_one_postgres_workspace_leaves_another_with_the_same_blobs(
    postgres_url: str, tmp_path: Path
) -> None:
    a = open_backend(project_for(tmp_path, f"{postgres_url}?workspace=gc-a-{tmp_path.name}"))
    b = open_backend(project_for(tmp_path, f"{postgres_url}?workspace=gc-b-{tmp_path.name}"))
    # The same content in both: the same blob addresses.
    b_state = b.write(b.read().with_resource(_with_blobs(b, "same", "1", ["k"])), 0)
    a_state = a.write(a.read().with_resource(_with_blobs(a, "same", "1", ["k"])), 0)
    with a.lock(LockInfo.new("reconciler apply")):
        a.write(a_state.without_resource("same"), a_state.serial)  # releasing collects a's
    with a.lock(LockInfo.new("reconciler state gc")):
        a.collect_garbage()
    reader = open_backend(project_for(tmp_path, f"{postgres_url}?workspace=gc-b-{tmp_path.name}"))
    assert reader.read() == b_state
    rec = b_state.resources["same"]
    assert rec.key_digests_ref and reader.get_blob("key-digests", rec.key_digests_ref) is not None


def _write_and_die_holding_the_lock(setting: str, root: str) -> None:
    backend = open_backend(project_for(Path(root), setting))
    with backend.lock(LockInfo.new("reconciler apply")):
        current = backend.read()
        for spec in ("2", "3"):
            current = backend.write(
                current.with_resource(_with_blobs(backend, "a", spec, ["k", spec])),
                current.serial,
            )
        os.kill(os.getpid(), signal.SIGKILL)  # the journal is never folded


def test_a_collection_keeps_what_a_killed_commands_journal_refers_to(
    open_state: OpenBackend, state_setting: str, tmp_path: Path
) -> None:
    backend = open_state()
    backend.write(backend.read().with_resource(_with_blobs(backend, "a", "1", ["k"])), 0)
    child = FORK.Process(
        target=_write_and_die_holding_the_lock, args=(state_setting, str(tmp_path))
    )
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    before = open_state().read()
    assert before.serial == 3  # the killed command's two writes: readers replay the journal
    if not state_setting.startswith("postgresql"):
        assert Path(state_setting + ".journal").stat().st_size > 0

    collector = open_state()
    with collector.lock(LockInfo.new("reconciler state gc"), timeout=10):
        collector.collect_garbage()
    with collector.lock(LockInfo.new("reconciler apply"), timeout=10):
        collector.write(before.with_resource(record("b")), before.serial)  # folds, collects

    after = open_state().read()
    assert after.resources["a"] == before.resources["a"]
    rec = after.resources["a"]
    assert rec.key_digests_ref and after.resources["a"].attempts[0].request_keys_file
    assert collector.get_blob("key-digests", rec.key_digests_ref) is not None
    assert collector.get_blob("request-keys", rec.attempts[0].request_keys_file) is not None


def test_a_holder_broken_by_force_unlock_collects_nothing_under_the_next_holder(
    open_state: OpenBackend,
) -> None:
    first = open_state()
    state = first.write(first.read().with_resource(record("base")), 0)
    stuck = open_state()
    held = stuck.lock(LockInfo.new("reconciler apply"))
    info = held.__enter__()
    state = stuck.write(state.with_resource(record("a")), state.serial)  # it wrote: would collect
    open_state().force_unlock(info.id, force=True)

    newcomer = open_state()
    with newcomer.lock(LockInfo.new("reconciler apply"), timeout=10):
        current = newcomer.read()
        digests = key_digests_blob({"k": "0" * 16})
        newcomer.put_blobs([digests])  # stored just before the write that refers to it
        held.__exit__(None, None, None)  # the stuck command ends now
        current = newcomer.write(
            current.with_resource(
                record("b").model_copy(update={"key_digests_ref": digests.sha256})
            ),
            current.serial,
        )

    reader = open_state()
    assert sorted(reader.read().resources) == ["a", "b", "base"]
    assert reader.get_blob("key-digests", digests.sha256) is not None
