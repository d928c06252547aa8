"""Local JSON file backend specifics: file format, backup, corruption, leftovers, the factory."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from reconciler.clock import SystemClock
from reconciler.config import ProjectConfig
from reconciler.errors import ConfigError, StateError
from reconciler.state.backend import LockInfo
from reconciler.state.document import State
from reconciler.state.local import LocalBackend
from reconciler.state.migrations import StateFormatError
from reconciler.state.registry import open_backend
from tests.integration.state.helpers import project_for, record


def local(path: Path) -> LocalBackend:
    return LocalBackend(
        path,
        clock=SystemClock(),
        lineage_factory=lambda: "lin",
        sleep=time.sleep,
        rng=random.Random(0),
    )


def test_default_setting_is_the_state_file_under_the_project_root(tmp_path: Path) -> None:
    from reconciler.config import Project

    project = Project(root=tmp_path, config=ProjectConfig(), config_path=None)
    backend = open_backend(project)
    assert isinstance(backend, LocalBackend)
    assert backend.path == (tmp_path / "state" / "reconciler.state.json").resolve()
    backend.write(backend.read(), 0)
    assert (tmp_path / "state" / "reconciler.state.json").is_file()


def test_unknown_url_scheme_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unsupported state backend `s3://`"):
        open_backend(project_for(tmp_path, "s3://bucket/state.json"))


def test_file_is_json_with_one_line_per_record_in_sorted_order(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    backend.write(backend.read().with_resource(record("b")).with_resource(record("a")), 0)
    text = path.read_text()
    data = json.loads(text)
    lines = text.splitlines()
    assert lines[lines.index('  "resources": {') + 1].startswith('    "a": {"applied":')
    assert lines[lines.index('  "resources": {') + 2].startswith('    "b": {"applied":')
    assert (
        data["serial"] == 1 and data["lineage"] == "lin" and list(data["resources"]) == ["a", "b"]
    )
    assert path.stat().st_mode & 0o644 == 0o644


def test_backup_holds_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    first = backend.write(backend.read().with_resource(record("a")), 0)
    assert not path.with_name("s.json.backup").exists()
    backend.write(first.with_resource(record("b")), 1)
    backup = json.loads(path.with_name("s.json.backup").read_text())
    assert backup["serial"] == 1 and list(backup["resources"]) == ["a"]


def test_corrupt_file_is_refused_and_points_at_the_backup(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    first = backend.write(backend.read().with_resource(record("a")), 0)
    backend.write(first.with_resource(record("b")), 1)
    path.write_text('{"format_version": 1, "lineage": "lin", "serial": 2, "resou')
    with pytest.raises(StateFormatError) as caught:
        local(path).read()
    assert f"state file {path} is corrupt" in str(caught.value)
    assert caught.value.hint == (
        f"the previous version is in {path}.backup; inspect it and copy it over {path} to restore"
    )
    # Following the hint works.
    path.write_bytes(path.with_name("s.json.backup").read_bytes())
    assert set(local(path).read().resources) == {"a"}


def test_corrupt_file_without_backup_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"format_version": 1}')
    with pytest.raises(StateFormatError, match="`lineage`: Field required") as caught:
        local(path).read()
    assert caught.value.hint is not None and "no backup exists" in caught.value.hint


def test_state_of_a_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps({"format_version": 99, "lineage": "x", "serial": 3, "resources": {}})
    )
    with pytest.raises(StateError, match="format version 99, newer than this reconciler"):
        local(path).read()
    with pytest.raises(StateError, match="format version 99"):
        local(path).write(record_state(), 3)


def record_state() -> State:
    return State(lineage="x", serial=3)


def test_leftover_temp_file_from_a_killed_writer_is_ignored_then_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    stored = backend.write(backend.read().with_resource(record("a")), 0)
    leftover = tmp_path / ".s.json.abc123.tmp"
    leftover.write_text('{"format_version": 1, "half a docu')
    assert local(path).read() == stored
    with backend.lock(LockInfo.new("t")):
        assert not leftover.exists()


def test_an_external_edit_is_seen_despite_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    stored = backend.write(backend.read().with_resource(record("a")), 0)
    other = local(path)
    other.write(stored.with_resource(record("b")), 1)
    assert set(backend.read().resources) == {"a", "b"}


def test_lock_file_names_the_holder_while_held_and_is_emptied_after(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    info = LockInfo.new("reconciler apply")
    with local(path).lock(info) as recorded:
        held = json.loads(path.with_name("s.json.lock").read_text())
        assert held["id"] == info.id and held["operation"] == "reconciler apply"
        assert held["path"] == str(path) == recorded.path
    assert path.with_name("s.json.lock").read_text() == ""


def test_blobs_live_beside_the_state(tmp_path: Path) -> None:
    import hashlib

    backend = local(tmp_path / "state" / "s.json")
    sha = hashlib.sha256(b"x").hexdigest()
    backend.put_blob("key-digests", sha, b"x")
    assert (tmp_path / "state" / "blobs" / "key-digests" / sha).read_bytes() == b"x"
