"""PostgreSQL backend specifics against a real server: connection errors, redaction, rows."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import psycopg
import pytest

from reconciler.errors import StateError
from reconciler.state import codec
from reconciler.state.backend import LockInfo
from reconciler.state.document import FORMAT_VERSION
from reconciler.state.migrations import StateFormatError
from reconciler.state.postgres import PostgresBackend
from reconciler.state.registry import open_backend
from reconciler.state.stored_form import DETAILS_BLOB
from tests.fixtures.postgres import PostgresServer
from tests.integration.state.helpers import project_for, record

pytestmark = pytest.mark.postgres


def backend_at(tmp_path: Path, url: str) -> PostgresBackend:
    backend = open_backend(project_for(tmp_path, url))
    assert isinstance(backend, PostgresBackend)
    return backend


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_unreachable_database_is_a_clear_error_without_password(tmp_path: Path) -> None:
    url = f"postgresql://reconciler:Sup3rSecret@127.0.0.1:{closed_port()}/db?workspace=t"
    with pytest.raises(StateError) as caught:
        backend_at(tmp_path, url).read()
    message = str(caught.value)
    assert message.startswith(
        "cannot connect to PostgreSQL state postgresql://reconciler:***@127.0.0.1"
    )
    assert "Connection refused" in message
    assert caught.value.hint is not None and "running and reachable" in caught.value.hint
    assert "Sup3rSecret" not in message + caught.value.hint


def test_wrong_password_is_a_clear_error_without_password(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    wrong = "Wr0ng-pass/word@x"
    url = postgres_server.url(password=wrong) + "?workspace=t"
    with pytest.raises(StateError) as caught:
        backend_at(tmp_path, url).read()
    message = str(caught.value)
    assert "password authentication failed for user" in message
    assert caught.value.hint == "check the user and password in the state URL"
    for secret in (wrong, postgres_server.password, "Wr0ng-pass%2Fword%40x"):
        assert secret not in message
    assert ":***@" in message


def test_password_never_appears_in_lock_or_stale_errors(tmp_path: Path, postgres_url: str) -> None:
    from reconciler.errors import StaleWriteError

    url = f"{postgres_url}?workspace=redact"
    password = str(psycopg.conninfo.conninfo_to_dict(postgres_url)["password"])
    a, b = backend_at(tmp_path, url), backend_at(tmp_path, url)
    base = a.read()
    a.write(base.with_resource(record("x")), 0)
    messages = [a.location]
    with pytest.raises(StaleWriteError) as stale:
        b.write(base, 0)
    messages.append(str(stale.value))
    with (
        a.lock(LockInfo.new("t")) as info,
        pytest.raises(StateError) as locked,
        b.lock(LockInfo.new("u")),
    ):
        pass
    messages += [str(locked.value), str(locked.value.hint), info.path]
    assert all(password not in m for m in messages)
    a.close()
    b.close()


def test_newer_format_version_in_the_row_is_refused(tmp_path: Path, postgres_url: str) -> None:
    backend = backend_at(tmp_path, f"{postgres_url}?workspace=newer")
    backend.write(backend.read().with_resource(record("a")), 0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE reconciler_state SET document = replace(document,"
            f" '\"format_version\": {FORMAT_VERSION}', '\"format_version\": {FORMAT_VERSION + 1}')"
            " WHERE workspace = 'newer'"
        )
    newer = f"format version {FORMAT_VERSION + 1}, newer than this reconciler supports"
    with pytest.raises(StateError, match=newer):
        backend_at(tmp_path, f"{postgres_url}?workspace=newer").read()
    backend.close()


def test_workspaces_are_separate_states(tmp_path: Path, postgres_url: str) -> None:
    a = backend_at(tmp_path, f"{postgres_url}?workspace=ws-a")
    b = backend_at(tmp_path, f"{postgres_url}?workspace=ws-b")
    a.write(a.read().with_resource(record("only-a")), 0)
    assert b.read().resources == {}
    with a.lock(LockInfo.new("a")), b.lock(LockInfo.new("b")):  # separate locks too
        pass
    a.close()
    b.close()


def test_workspace_row_holds_serial_and_lineage_and_each_record_a_row_of_its_own(
    tmp_path: Path, postgres_url: str
) -> None:
    backend = backend_at(tmp_path, f"{postgres_url}?workspace=row")
    stored = backend.write(backend.read().with_resource(record("a")), 0)
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT serial, lineage, format_version, document::jsonb -> 'resources'"
            " FROM reconciler_state WHERE workspace = 'row'"
        ).fetchone()
        records = conn.execute(
            "SELECT name, record::jsonb ->> 'applied' FROM reconciler_state_records"
            " WHERE workspace = 'row'"
        ).fetchall()
        blobs = conn.execute(
            "SELECT kind, sha256 FROM reconciler_state_blobs WHERE workspace = 'row'"
        ).fetchall()
    assert row == (1, stored.lineage, FORMAT_VERSION, {})
    blob = codec.record_blob(record("a"))
    assert blob is not None
    assert records == [("a", blob.sha256)]
    assert blobs == [(DETAILS_BLOB, blob.sha256)]  # written in the same transaction
    backend.close()


def _record_versions(postgres_url: str, workspace: str) -> dict[str, str]:
    """Per record row, the transaction that last wrote it (PostgreSQL's xmin)."""
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT name, xmin::text FROM reconciler_state_records WHERE workspace = %s",
            (workspace,),
        ).fetchall()
    return dict(rows)


def test_a_write_rewrites_only_the_rows_of_records_that_changed(
    tmp_path: Path, postgres_url: str
) -> None:
    backend = backend_at(tmp_path, f"{postgres_url}?workspace=changed-rows")
    state = backend.read()
    for name in ("a", "b", "c"):
        state = state.with_resource(record(name))
    state = backend.write(state, 0)
    before = _record_versions(postgres_url, "changed-rows")
    state = backend.write(state.with_resource(record("a", "b" * 64)).without_resource("c"), 1)
    after = _record_versions(postgres_url, "changed-rows")
    assert set(after) == {"a", "b"}
    assert after["b"] == before["b"] and after["a"] != before["a"]
    fresh = backend_at(tmp_path, f"{postgres_url}?workspace=changed-rows")
    assert fresh.read() == state
    backend.close()
    fresh.close()


def test_a_version_four_one_row_state_is_read_and_converted_to_rows_by_its_first_write(
    tmp_path: Path, postgres_url: str
) -> None:
    v4 = {
        "format_version": 4,
        "lineage": "old",
        "serial": 7,
        "project": None,
        "tombstones": {"gone": 1},
        "resources": {"a": record("a", attempts=1).model_dump(mode="json")},
    }
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        backend_at(tmp_path, f"{postgres_url}?workspace=ws-v4").read()  # creates the tables
        conn.execute(
            "INSERT INTO reconciler_state (workspace, lineage, serial, format_version, document)"
            " VALUES ('ws-v4', 'old', 7, 4, %s)",
            (json.dumps(v4, indent=2, sort_keys=True),),
        )
    backend = backend_at(tmp_path, f"{postgres_url}?workspace=ws-v4")
    state = backend.read()
    assert (state.serial, state.tombstones) == (7, {"gone": 1})
    assert state.resources == {"a": record("a", attempts=1)}
    written = backend.write(state.with_resource(record("b")), 7)
    assert set(_record_versions(postgres_url, "ws-v4")) == {"a", "b"}
    fresh = backend_at(tmp_path, f"{postgres_url}?workspace=ws-v4")
    assert fresh.read() == written
    backend.close()
    fresh.close()


def test_version_five_rows_are_read_and_all_rewritten_in_the_current_form_by_the_first_write(
    tmp_path: Path, postgres_url: str
) -> None:
    """Version 5 stored each record spelled out (its details and spec hash on the row, fields
    at their defaults left out); the first write brings every row, changed or not, to the current format."""
    old = record("a", attempts=1)
    v5_row = old.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
    header = {"format_version": 5, "lineage": "old", "serial": 3, "resources": {}, "tombstones": {}}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        backend_at(tmp_path, f"{postgres_url}?workspace=ws-v5").read()  # creates the tables
        conn.execute(
            "INSERT INTO reconciler_state (workspace, lineage, serial, format_version, document)"
            " VALUES ('ws-v5', 'old', 3, 5, %s)",
            (json.dumps(header),),
        )
        conn.execute(
            "INSERT INTO reconciler_state_records (workspace, name, record)"
            " VALUES ('ws-v5', 'a', %s)",
            (json.dumps(v5_row),),
        )
    backend = backend_at(tmp_path, f"{postgres_url}?workspace=ws-v5")
    state = backend.read()
    assert state.resources == {"a": old}
    written = backend.write(state.with_resource(record("b")), 3)
    with psycopg.connect(postgres_url) as conn:
        rows: dict[str, str] = dict(
            conn.execute(
                "SELECT name, record FROM reconciler_state_records WHERE workspace = 'ws-v5'"
            ).fetchall()
        )
        version = conn.execute(
            "SELECT format_version FROM reconciler_state WHERE workspace = 'ws-v5'"
        ).fetchone()
    assert version == (FORMAT_VERSION,)
    assert rows == {name: codec.encode_record(written.resources[name]).decode() for name in "ab"}
    fresh = backend_at(tmp_path, f"{postgres_url}?workspace=ws-v5")
    assert fresh.read() == written
    backend.close()
    fresh.close()


def test_a_missing_details_blob_is_a_clear_error_naming_it(
    tmp_path: Path, postgres_url: str
) -> None:
    backend = backend_at(tmp_path, f"{postgres_url}?workspace=lost-blob")
    backend.write(backend.read().with_resource(record("a")), 0)
    backend.close()
    blob = codec.record_blob(record("a"))
    assert blob is not None
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM reconciler_state_blobs WHERE workspace = 'lost-blob'")
    fresh = backend_at(tmp_path, f"{postgres_url}?workspace=lost-blob")
    with pytest.raises(StateFormatError) as caught:
        fresh.read()
    assert f"record `a` keeps its applied spec and input in blob applied/{blob.sha256}" in str(
        caught.value
    )
    assert caught.value.hint is not None and "restore the missing blob" in caught.value.hint
    fresh.close()
