"""Local JSON file backend specifics: file format, backup, corruption, leftovers, the factory."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from benchmarks.state_writes import settled_record
from reconciler.config import ProjectConfig
from reconciler.errors import ConfigError, StateError
from reconciler.state import codec
from reconciler.state.backend import LockInfo
from reconciler.state.document import FORMAT_VERSION, JobState, ResourceRecord, State
from reconciler.state.local import LocalBackend
from reconciler.state.migrations import StateFormatError
from reconciler.state.registry import open_backend
from reconciler.state.stored_form import DETAILS_BLOB
from tests.integration.state.helpers import decode_file, local, project_for, record


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


def _settled(name: str, state: JobState = JobState.SUCCEEDED) -> ResourceRecord:
    """A settled resource as apply records it (see benchmarks.state_writes)."""
    base = settled_record(int(name.rsplit("-", 1)[1]))
    attempt = base.attempts[0].model_copy(update={"state": state})
    return base.model_copy(update={"attempts": (attempt,)})


@pytest.mark.parametrize("locked", [False, True], ids=["rewrite", "journal-folded"])
def test_a_change_to_one_resource_changes_one_line_of_the_committed_file(
    tmp_path: Path, locked: bool
) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    state = backend.read()
    for i in range(5):
        state = state.with_resource(_settled(f"eval-{i:05d}"))
    state = backend.write(state, 0)
    before = path.read_text().splitlines()
    changed = state.with_resource(_settled("eval-00002", JobState.FAILED))
    with backend.lock(LockInfo.new("apply")) if locked else contextlib.nullcontext():
        backend.write(changed, state.serial)
    after = path.read_text().splitlines()
    assert len(after) == len(before)
    differ = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [old.split(":")[0].strip() for old, _ in differ] == ['"eval-00002"', '"serial"']
    assert '"state":"FAILED"' in differ[0][1]  # what changed is readable on the line itself


def test_every_details_blob_the_file_refers_to_is_stored_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    state = backend.write(backend.read().with_resource(_settled("eval-00000")), 0)
    with backend.lock(LockInfo.new("apply")):
        state = backend.write(state.with_resource(_settled("eval-00001")), state.serial)
        # Under the lock the change is a journal line; its blob is already stored.
        assert set(decode_file(path).resources) == {"eval-00000"}
        assert codec.encode(local(path).read()) == codec.encode(state)
    refs = {r["applied"] for r in json.loads(path.read_text())["resources"].values()}
    assert refs == {p.name for p in (tmp_path / "blobs" / DETAILS_BLOB).iterdir()}
    assert codec.encode(decode_file(path)) == codec.encode(state)


def test_a_version_five_file_is_read_and_rewritten_in_the_current_form_by_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.json"
    old = settled_record(0)
    v5_line = old.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
    path.write_text(
        json.dumps(
            {"format_version": 5, "lineage": "lin", "serial": 4, "resources": {old.name: v5_line}},
            indent=2,
        )
    )
    backend = local(path)
    state = backend.read()
    assert state.resources == {old.name: old}  # microseconds and all, as version 5 wrote them
    stored = backend.write(state.with_resource(_settled("eval-00001")), 4)
    document = json.loads(path.read_text())
    assert document["format_version"] == FORMAT_VERSION
    assert all(set(r) == {"applied", "attempts", "results"} for r in document["resources"].values())
    assert local(path).read() == decode_file(path)
    assert codec.encode(decode_file(path)) == codec.encode(stored)
    assert path.with_name("s.json.backup").exists()  # the version 5 file, kept once


def test_a_missing_details_blob_is_refused_naming_the_blob_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    backend = local(path)
    backend.write(backend.read().with_resource(_settled("eval-00000")), 0)
    (blob,) = (tmp_path / "blobs" / DETAILS_BLOB).iterdir()
    blob.unlink()
    with pytest.raises(StateFormatError) as caught:
        local(path).read()
    assert f"blob {DETAILS_BLOB}/{blob.name}, which is missing" in str(caught.value)
    assert caught.value.hint is not None and "commit the `blobs/` directory" in caught.value.hint


def test_many_new_blobs_in_one_call_are_stored_with_one_file_system_sync(tmp_path: Path) -> None:
    backend = local(tmp_path / "s.json")
    blobs = [codec.record_blob(_settled(f"eval-{i:05d}")) for i in range(40)]
    assert all(blob is not None for blob in blobs)
    backend.put_blobs([b for b in blobs if b is not None])
    for blob in blobs:
        assert blob is not None and backend.get_blob(blob.kind, blob.sha256) == blob.data
    assert not list((tmp_path / "blobs" / DETAILS_BLOB).glob(".*.tmp"))
