"""`reconciler state ...` and `reconciler force-unlock` through `python -m reconciler`."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from reconciler.state import codec
from reconciler.state.backend import LockInfo
from reconciler.state.document import State
from reconciler.state.registry import open_backend
from tests.integration.state.helpers import project_for, record

REPO = Path(__file__).resolve().parents[3]
FORK = multiprocessing.get_context("fork")


def run(
    project: Path, *args: str, state: str | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RECONCILER_STATE", None)
    if state is not None:
        env["RECONCILER_STATE"] = state
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=project,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def seed(project: Path, setting: str, *names: str) -> State:
    backend = open_backend(project_for(project, setting))
    try:
        state = backend.read()
        for name in names:
            state = state.with_resource(record(name, attempts=1))
        return backend.write(state, 0)
    finally:
        backend.close()


def stored(project: Path, setting: str) -> State:
    backend = open_backend(project_for(project, setting))
    try:
        return backend.read()
    finally:
        backend.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "reconciler.yaml").write_text("state: state/team.state.json\n")
    return tmp_path


SETTING = "state/team.state.json"  # as reconciler.yaml above says


def test_list_prints_only_names_on_stdout(project: Path) -> None:
    empty = run(project, "state", "list")
    assert (empty.returncode, empty.stdout) == (0, b"")
    seed(project, SETTING, "beta", "alpha")
    result = run(project, "state", "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"alpha\nbeta\n"
    # --state overrides reconciler.yaml (and RECONCILER_STATE).
    seed(project, "elsewhere.json", "gamma")
    flagged = run(project, "--state", "elsewhere.json", "state", "list", state="ignored.json")
    assert flagged.stdout == b"gamma\n", flagged.stderr


def test_show_prints_the_record_as_json_and_missing_name_fails(project: Path) -> None:
    seed(project, SETTING, "alpha")
    shown = run(project, "state", "show", "alpha")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "alpha" and data["attempts"][0]["job_name"] == "batches/alpha-1"
    missing = run(project, "state", "show", "nope")
    assert missing.returncode == 1 and missing.stdout == b""
    assert b"Error: no resource named 'nope' in the state" in missing.stderr


def test_rm_forgets_a_resource_under_the_lock(project: Path) -> None:
    before = seed(project, SETTING, "alpha", "beta")
    result = run(project, "state", "rm", "alpha")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"" and b"Removed 1 resource(s)" in result.stderr
    after = stored(project, SETTING)
    assert set(after.resources) == {"beta"} and after.serial == before.serial + 1
    assert run(project, "state", "rm", "alpha").returncode == 1


def test_mv_renames_and_refuses_bad_or_taken_names(project: Path) -> None:
    seed(project, SETTING, "alpha", "beta")
    assert run(project, "state", "mv", "alpha", "gamma").returncode == 0
    after = stored(project, SETTING)
    assert set(after.resources) == {"beta", "gamma"} and after.resources["gamma"].name == "gamma"
    taken = run(project, "state", "mv", "gamma", "beta")
    assert taken.returncode == 1 and b"already in the state" in taken.stderr
    bad = run(project, "state", "mv", "gamma", "Bad_Name")
    assert bad.returncode == 1 and b"invalid resource name" in bad.stderr
    assert stored(project, SETTING).serial == after.serial


def test_pull_prints_the_document_and_push_of_an_edit_round_trips(project: Path) -> None:
    seed(project, SETTING, "alpha")
    pulled = run(project, "state", "pull")
    assert pulled.returncode == 0, pulled.stderr
    # The records' details are spelled out (the file refers to them as blobs): the pulled
    # document needs no blob store to be read or pushed.
    assert b'"applied"' in (project / SETTING).read_bytes()
    assert b'"applied"' not in pulled.stdout
    assert codec.decode(pulled.stdout, source="pulled") == stored(project, SETTING)
    edited = codec.decode(pulled.stdout, source="pulled").without_resource("alpha")
    (project / "edited.json").write_bytes(codec.encode(edited))
    pushed = run(project, "state", "push", "edited.json")
    assert pushed.returncode == 0, pushed.stderr
    assert b"Pushed edited.json (serial 2)" in pushed.stderr
    assert stored(project, SETTING).resources == {}


def test_push_refuses_another_lineage_even_with_force(project: Path) -> None:
    seed(project, SETTING, "alpha")
    foreign = State(lineage=str(uuid.uuid4()), serial=9)
    for extra in ((), ("--force",)):
        result = run(project, "state", "push", "-", *extra, stdin=codec.encode(foreign))
        assert result.returncode == 1
        assert b"belongs to another state" in result.stderr
    assert set(stored(project, SETTING).resources) == {"alpha"}


def test_push_refuses_an_older_serial_unless_forced(project: Path) -> None:
    first = seed(project, SETTING, "alpha")
    old = codec.encode(first)  # refers to its details blobs: push reads them from the backend
    run(project, "state", "rm", "alpha")
    refused = run(project, "state", "push", "-", stdin=old)
    assert refused.returncode == 1 and b"older than the stored state's 2" in refused.stderr
    forced = run(project, "state", "push", "-", "--force", stdin=old)
    assert forced.returncode == 0, forced.stderr
    after = stored(project, SETTING)
    assert set(after.resources) == {"alpha"} and after.serial == 3


def _hold(project: str, setting: str, ready: object, lock_id: str) -> None:
    backend = open_backend(project_for(Path(project), setting))
    info = dataclasses.replace(LockInfo.new("reconciler apply"), id=lock_id)
    with backend.lock(info):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(120)


@pytest.mark.parametrize("backend", ["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_locked_state_names_holder_and_force_unlock_frees_it(
    project: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        setting = f"{request.getfixturevalue('postgres_url')}?workspace=cli-{uuid.uuid4().hex[:8]}"
    else:
        setting = str(project / SETTING)
    seed(project, setting, "alpha")
    lock_id = str(uuid.uuid4())
    ready = FORK.Event()
    holder = FORK.Process(target=_hold, args=(str(project), setting, ready, lock_id))
    holder.start()
    try:
        assert ready.wait(10)
        blocked = run(project, "state", "rm", "alpha", state=setting)
        assert blocked.returncode == 1
        err = blocked.stderr.decode()
        assert "is locked by `reconciler apply`" in err and f"pid {holder.pid}" in err
        assert (
            f"Hint: if that process is gone or stuck, run `reconciler force-unlock {lock_id}`"
            in err
        )
        waited = run(project, "state", "rm", "alpha", "--lock-timeout", "1s", state=setting)
        assert waited.returncode == 1 and "(waited 1s)" in waited.stderr.decode()
        wrong = run(project, "force-unlock", "not-the-id", state=setting)
        assert wrong.returncode == 1 and b"does not match" in wrong.stderr
        alive = run(project, "force-unlock", lock_id, state=setting)
        assert alive.returncode == 1
        assert f"pid {holder.pid}" in alive.stderr.decode()
        assert "still running on this host" in alive.stderr.decode()
        assert f"reconciler force-unlock --force {lock_id}" in alive.stderr.decode()
        freed = run(project, "force-unlock", "--force", lock_id, state=setting)
        assert freed.returncode == 0, freed.stderr
        assert f"Released the lock {lock_id}".encode() in freed.stderr and freed.stdout == b""
        done = run(project, "state", "rm", "alpha", state=setting)
        assert done.returncode == 0, done.stderr
        if backend == "postgres":
            password = request.getfixturevalue("postgres_server").password
            assert password.encode() not in blocked.stderr + freed.stderr + done.stderr
    finally:
        holder.kill()
        holder.join(10)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5", 1.5)],
)
def test_lock_timeout_durations(text: str, seconds: float) -> None:
    from reconciler.cli.session import parse_duration

    assert parse_duration(text) == seconds


def test_bad_lock_timeout_is_a_clear_error(project: Path) -> None:
    seed(project, SETTING, "alpha")
    result = run(project, "state", "rm", "alpha", "--lock-timeout", "soon")
    assert result.returncode == 1
    assert b"invalid duration 'soon'" in result.stderr


@pytest.mark.postgres
def test_cli_wrong_password_error_is_redacted(
    project: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("postgres_server")
    result = run(project, "state", "list", state=server.url(password="n0t-it") + "?workspace=t")
    assert result.returncode == 1
    assert b"password authentication failed" in result.stderr
    assert b"n0t-it" not in result.stderr and server.password.encode() not in result.stderr


def test_corrupt_state_via_cli_points_at_the_backup(project: Path) -> None:
    first = seed(project, SETTING, "alpha")
    run(project, "state", "rm", "alpha")
    assert first.serial == 1
    (project / SETTING).write_text("{ broken")
    result = run(project, "state", "list")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "is corrupt: not valid JSON" in err
    assert f"Hint: the previous version is in {(project / SETTING).resolve()}.backup" in err


def test_a_missing_details_blob_is_one_clear_error_not_a_traceback(project: Path) -> None:
    seed(project, SETTING, "alpha")
    (blob,) = (project / "state" / "blobs" / "applied").iterdir()
    blob.unlink()
    result = run(project, "state", "list")
    assert result.returncode == 1 and result.stdout == b""
    assert f"blob applied/{blob.name}, which is missing".encode() in result.stderr
    assert b"restore the missing blob from version control" in result.stderr
    assert b"Traceback" not in result.stderr


def test_gc_removes_blobs_no_record_refers_to_and_says_how_many(project: Path) -> None:
    seed(project, SETTING, "alpha")
    blobs = project / "state" / "blobs" / "request-keys"
    blobs.mkdir(parents=True)
    orphan = blobs / ("0" * 64)
    orphan.write_bytes(b"[]")  # not its content's hash: collection never reads what it deletes
    result = run(project, "state", "gc")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert b"Removed 1 blob(s) no record refers to" in result.stderr
    assert b"kept 1" in result.stderr  # alpha's details
    assert not orphan.exists()
    assert run(project, "state", "gc").stderr.startswith(b"Removed 0 blob(s)")
    assert stored(project, SETTING).resources.keys() == {"alpha"}
