"""Backend building blocks that need no storage: lock info, lock retry, blob keys, URLs."""

from __future__ import annotations

import random

import pytest

from reconciler.clock import FakeClock
from reconciler.errors import ConfigError, StateError, StateLockedError
from reconciler.state.backend import (
    LockHeldError,
    LockInfo,
    check_blob,
    claim,
    holder_alive_here,
    refuse_live_holder,
    retry_lock,
)
from reconciler.state.document import State
from reconciler.state.postgres_url import parse_url, redact_url


def test_lock_info_round_trips_and_names_the_holder() -> None:
    info = LockInfo.new("reconciler apply", clock=FakeClock())
    again = LockInfo.from_json(info.to_json())
    assert again == info
    text = info.describe()
    assert "`reconciler apply`" in text and f"pid {info.pid}" in text and info.id in text
    assert "2026-01-01T00:00:00+00:00" in text


@pytest.mark.parametrize("stored", ["", "{", '{"id": 1}', "[]"])
def test_unreadable_lock_info_is_none(stored: str) -> None:
    assert LockInfo.from_json(stored) is None


def test_lock_held_error_hints_force_unlock_with_the_id() -> None:
    info = LockInfo.new("reconciler apply")
    error = LockHeldError("state.json", info)
    assert "state state.json is locked by `reconciler apply`" in str(error)
    assert error.hint is not None and f"reconciler force-unlock {info.id}" in error.hint
    assert "unreadable" in str(LockHeldError("state.json", None))


def test_retry_lock_backs_off_with_jitter_until_deadline() -> None:
    clock = FakeClock()
    sleeps: list[float] = []
    holder = LockInfo.new("other")

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    def never() -> int:
        raise LockHeldError("s", holder)

    with pytest.raises(LockHeldError, match="waited 5s") as caught:
        retry_lock(never, timeout=5, clock=clock, sleep=sleep, rng=random.Random(1), location="s")
    assert caught.value.holder == holder
    assert sum(sleeps) == pytest.approx(5.0)
    assert sleeps[0] <= 0.05 and max(sleeps) <= 2.0
    assert len(set(sleeps)) == len(sleeps)  # jittered, not lock-step


def test_retry_lock_returns_once_free_and_zero_timeout_fails_at_once() -> None:
    clock = FakeClock()
    failures = [LockHeldError("s", None), LockHeldError("s", None)]

    def attempt() -> int:
        if failures:
            raise failures.pop()
        return 42

    got = retry_lock(
        attempt, timeout=10, clock=clock, sleep=clock.advance, rng=random.Random(1), location="s"
    )
    assert got == 42
    with pytest.raises(LockHeldError) as caught:
        retry_lock(
            lambda: (_ for _ in ()).throw(LockHeldError("s", None)),
            timeout=0,
            clock=clock,
            sleep=clock.advance,
            rng=random.Random(1),
            location="s",
        )
    assert "waited" not in str(caught.value)


def test_blob_keys_cannot_escape_and_content_must_match() -> None:
    import hashlib

    sha = hashlib.sha256(b"x").hexdigest()
    check_blob("key-digests", sha, b"x")
    for kind in ("", "../x", "A", "a/b"):
        with pytest.raises(StateError):
            check_blob(kind, sha)
    with pytest.raises(StateError):
        check_blob("k", "../" + sha[3:])
    with pytest.raises(StateError, match="does not match"):
        check_blob("k", sha, b"y")


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:s3cret@h/db?workspace=w", "postgresql://u:***@h/db?workspace=w"),
        (
            "postgres://h/db?password=s3cret&sslmode=require",
            "postgres://h/db?password=***&sslmode=require",
        ),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_redact_url_hides_passwords(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_parse_url_extracts_workspace_and_keeps_password_out_of_names() -> None:
    target = parse_url("postgresql://u:p%40ss@h:1/db?workspace=team-a&sslmode=disable")
    assert target.workspace == "team-a"
    assert "workspace" not in target.conninfo and "sslmode=disable" in target.conninfo
    assert "p%40ss" not in target.redacted and "p@ss" not in target.redacted
    assert set(target.secrets) == {"p@ss", "p%40ss"}
    assert parse_url("postgresql://h/db").workspace == "default"


def test_invalid_workspace_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_url("postgresql://u:hunter2@h/db?workspace=../x")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_a_lock_holder_is_alive_here_only_while_its_process_runs_on_this_host() -> None:
    import dataclasses
    import subprocess
    import sys

    me = LockInfo.new("reconciler apply")
    assert holder_alive_here(me)
    assert not holder_alive_here(dataclasses.replace(me, host="another-host"))
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, check=True, text=True)  # fmt: skip
    assert not holder_alive_here(dataclasses.replace(me, pid=int(finished.stdout)))


def test_a_live_holder_is_refused_unless_forced() -> None:
    me = LockInfo.new("reconciler apply")
    with pytest.raises(StateLockedError, match="still running on this host") as refused:
        refuse_live_holder(me, "state.json", force=False)
    assert refused.value.hint is not None and f"--force {me.id}" in refused.value.hint
    refuse_live_holder(me, "state.json", force=True)


def test_a_state_is_claimed_by_its_project_and_refused_to_another() -> None:
    fresh = State(lineage="l")
    assert claim(fresh, None, "s") is fresh
    assert claim(fresh, "evals", "s").project == "evals"
    ours = State(lineage="l", project="evals")
    assert claim(ours, "evals", "s") is ours
    for other in ("labels", None):
        with pytest.raises(StateError, match="belongs to project `evals`") as refused:
            claim(ours, other, "state.json")
        assert refused.value.hint is not None and "project:" in refused.value.hint


def test_a_postgres_url_without_workspace_takes_the_project_id_or_is_refused() -> None:
    assert parse_url("postgresql://h/db", "evals").workspace == "evals"
    assert parse_url("postgresql://h/db?workspace=w", "evals").workspace == "w"
    with pytest.raises(ConfigError, match="names no workspace") as refused:
        parse_url("postgresql://u:hunter2@h/db", None)
    assert "hunter2" not in str(refused.value) and "project:" in str(refused.value.hint)
