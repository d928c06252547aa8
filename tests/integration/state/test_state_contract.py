"""The contract every StateBackend keeps, run against the local file and PostgreSQL alike."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from reconciler.clock import FakeClock
from reconciler.errors import StaleWriteError, StateError, StateLockedError
from reconciler.state.backend import Blob, LockHeldError, LockInfo
from reconciler.state.document import State
from tests.integration.state.helpers import OpenBackend, project_for, record

FORK = multiprocessing.get_context("fork")


def lock_info(operation: str = "reconciler test") -> LockInfo:
    return LockInfo.new(operation)


def test_read_of_missing_state_is_empty_with_fresh_lineage(open_state: OpenBackend) -> None:
    backend = open_state(lineage_factory=lambda: "lineage-1")
    state = backend.read()
    assert state == State(lineage="lineage-1")
    assert state.serial == 0


def test_write_stores_state_and_bumps_serial(open_state: OpenBackend) -> None:
    backend = open_state()
    empty = backend.read()
    stored = backend.write(empty.with_resource(record("a", attempts=2)), expected_serial=0)
    assert stored.serial == 1
    again = open_state().read()
    assert again == stored
    assert again.lineage == empty.lineage
    assert again.resources["a"].attempts[1].job_name == "batches/a-2"


def test_unchanged_write_keeps_serial(open_state: OpenBackend) -> None:
    backend = open_state()
    first = backend.write(backend.read().with_resource(record("a")), 0)
    same = backend.write(first, first.serial)
    assert same.serial == first.serial == 1
    # A fresh backend (no cache) compares against what is stored, too.
    assert open_state().write(first, 1).serial == 1


def test_editing_a_read_state_in_place_does_not_fool_the_next_write(
    open_state: OpenBackend,
) -> None:
    backend = open_state()
    first = backend.write(backend.read().with_resource(record("a")), 0)
    current = backend.read()
    current.resources["b"] = record("b")  # frozen model, mutable dict: callers may do this
    stored = backend.write(current, first.serial)
    assert stored.serial == 2 and set(open_state().read().resources) == {"a", "b"}


def test_stale_write_is_refused(open_state: OpenBackend) -> None:
    a, b = open_state(), open_state()
    base = a.read()
    a.write(base.with_resource(record("a")), 0)
    with pytest.raises(StaleWriteError, match=r"serial 1.*based on serial 0"):
        b.write(base.with_resource(record("b")), 0)
    current = b.read()
    assert set(current.resources) == {"a"}
    with pytest.raises(StaleWriteError):
        b.write(current.with_resource(record("b")), 5)


def test_write_of_another_lineage_is_refused(open_state: OpenBackend) -> None:
    backend = open_state()
    backend.write(backend.read().with_resource(record("a")), 0)
    with pytest.raises(StateError, match="lineage"):
        backend.write(State(lineage="someone-else").with_resource(record("x")), 1)


def test_second_lock_is_refused_and_names_holder(open_state: OpenBackend) -> None:
    holder, other = open_state(), open_state()
    info = lock_info("reconciler apply")
    with holder.lock(info):
        with pytest.raises(StateLockedError) as caught, other.lock(lock_info()):
            pass
        error = caught.value
        assert isinstance(error, LockHeldError)
        assert error.holder is not None and error.holder.id == info.id
        assert "reconciler apply" in str(error)
        assert f"pid {os.getpid()}" in str(error)
        assert (
            error.hint
            == f"if that process is gone or stuck, run `reconciler force-unlock {info.id}`"
        )
    with other.lock(lock_info()):  # released on exit
        pass


def test_lock_timeout_waits_with_jittered_backoff_then_fails(open_state: OpenBackend) -> None:
    clock = FakeClock()
    holder = open_state()
    waiter = open_state(clock=clock, sleep=clock.advance, rng=random.Random(7))
    with (
        holder.lock(lock_info()),
        pytest.raises(LockHeldError, match=r"waited 3s"),
        waiter.lock(lock_info(), timeout=3),
    ):
        pass
    assert clock.monotonic() == pytest.approx(3.0)


def test_lock_wait_succeeds_when_holder_releases(
    open_state: OpenBackend, state_setting: str, tmp_path: Path
) -> None:
    started = FORK.Event()

    def hold_briefly() -> None:
        from reconciler.state.registry import open_backend

        backend = open_backend(project_for(tmp_path, state_setting))
        with backend.lock(lock_info("holder")):
            started.set()
            time.sleep(0.5)

    child = FORK.Process(target=hold_briefly)
    child.start()
    assert started.wait(10)
    with open_state().lock(lock_info(), timeout=20):
        pass
    child.join(10)
    assert child.exitcode == 0


def test_force_unlock_breaks_a_stuck_lock(open_state: OpenBackend) -> None:
    stuck, other = open_state(), open_state()
    info = lock_info("stuck apply")
    with stuck.lock(info):
        with pytest.raises(StateError, match="does not match"):
            other.force_unlock("not-the-id")
        # The holder (this very process) is alive on this host: named and left alone...
        with pytest.raises(StateLockedError, match="still running on this host") as refused:
            other.force_unlock(info.id)
        assert f"pid {os.getpid()}" in str(refused.value) and "--force" in str(refused.value.hint)
        # ...unless forced.
        broken = other.force_unlock(info.id, force=True)
        assert broken.id == info.id and broken.operation == "stuck apply"
        with other.lock(lock_info(), timeout=5):
            pass


def test_force_unlock_of_unlocked_state_is_refused(open_state: OpenBackend) -> None:
    backend = open_state()
    backend.write(backend.read(), 0)
    with pytest.raises(StateError, match="not locked"):
        backend.force_unlock("whatever")


def test_blobs_are_content_addressed(open_state: OpenBackend) -> None:
    backend = open_state()
    data = b'{"k1": "digest"}\n'
    sha = hashlib.sha256(data).hexdigest()
    assert backend.get_blob("key-digests", sha) is None
    backend.put_blob("key-digests", sha, data)
    backend.put_blob("key-digests", sha, data)  # idempotent
    assert backend.get_blob("key-digests", sha) == data
    assert open_state().get_blob("key-digests", sha) == data
    with pytest.raises(StateError, match="does not match"):
        backend.put_blob("key-digests", sha, b"other bytes")
    with pytest.raises(StateError, match="invalid blob kind"):
        backend.get_blob("../etc", sha)


def test_several_blobs_are_stored_at_once_and_a_bad_one_stores_none(
    open_state: OpenBackend,
) -> None:
    backend = open_state()
    blobs = [
        Blob(kind, hashlib.sha256(data).hexdigest(), data)
        for kind, data in (
            ("key-digests", b"{}"),
            ("request-keys", b'["a"]'),
            ("request-keys", b"[]"),
        )
    ]
    backend.put_blobs(blobs)
    backend.put_blobs(blobs[:1])  # idempotent
    assert [open_state().get_blob(b.kind, b.sha256) for b in blobs] == [b.data for b in blobs]
    bad = Blob("request-keys", hashlib.sha256(b"x").hexdigest(), b"y")
    unseen = Blob("request-keys", hashlib.sha256(b"z").hexdigest(), b"z")
    with pytest.raises(StateError, match="does not match"):
        backend.put_blobs([unseen, bad])
    assert backend.get_blob(unseen.kind, unseen.sha256) is None


def _increment(setting: str, root: str, index: int) -> None:
    from reconciler.state.registry import open_backend

    backend = open_backend(project_for(Path(root), setting))
    try:
        with backend.lock(LockInfo.new(f"worker {index}"), timeout=60):
            current = backend.read()
            counter = current.resources.get("counter")
            count = int(counter.spec_hash) if counter else 0
            time.sleep(0.005)  # widen the read-modify-write window a lost update would need
            updated = current.with_resource(record("counter", str(count + 1)))
            updated = updated.with_resource(record(f"w{index:02d}"))
            backend.write(updated, current.serial)
    finally:
        backend.close()


def test_sixteen_processes_increment_without_lost_updates(
    open_state: OpenBackend, state_setting: str, tmp_path: Path
) -> None:
    backend = open_state()
    start = backend.write(backend.read().with_resource(record("seed")), 0)
    workers = [
        FORK.Process(target=_increment, args=(state_setting, str(tmp_path), i)) for i in range(16)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 16
    final = open_state().read()
    assert final.serial == start.serial + 16
    assert final.resources["counter"].spec_hash == "16"
    assert {f"w{i:02d}" for i in range(16)} <= set(final.resources)
    assert final.lineage == start.lineage


def _hold_lock_forever(setting: str, root: str, ready: object) -> None:
    from reconciler.state.registry import open_backend

    backend = open_backend(project_for(Path(root), setting))
    with backend.lock(LockInfo.new("doomed holder")):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(600)


def test_lock_of_a_holder_killed_with_sigkill_is_not_stuck(
    open_state: OpenBackend, state_setting: str, tmp_path: Path
) -> None:
    ready = FORK.Event()
    child = FORK.Process(target=_hold_lock_forever, args=(state_setting, str(tmp_path), ready))
    child.start()
    assert ready.wait(10)
    with pytest.raises(StateLockedError, match="doomed holder"), open_state().lock(lock_info()):
        pass
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    # PostgreSQL notices the closed socket asynchronously: allow it a moment.
    with open_state().lock(lock_info(), timeout=10):
        pass


def _write_and_die_before_publishing(setting: str, root: str) -> None:
    from reconciler.state.registry import open_backend

    backend = open_backend(project_for(Path(root), setting))
    current = backend.read()
    backend._on_staged = lambda: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[attr-defined]
    backend.write(current.with_resource(record("torn", attempts=3)), current.serial)


def test_write_torn_by_a_kill_leaves_previous_state_readable(
    open_state: OpenBackend, state_setting: str, tmp_path: Path
) -> None:
    backend = open_state()
    before = backend.write(backend.read().with_resource(record("kept")), 0)
    child = FORK.Process(
        target=_write_and_die_before_publishing, args=(state_setting, str(tmp_path))
    )
    child.start()
    child.join(20)
    assert child.exitcode == -signal.SIGKILL
    after = open_state().read()
    assert after == before
    with open_state().lock(lock_info(), timeout=10):  # nothing left locked either
        stored = open_state().write(after.with_resource(record("next")), after.serial)
    assert stored.serial == before.serial + 1
