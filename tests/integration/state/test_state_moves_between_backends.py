"""`state pull` output carries every blob its records refer to, so `state push` can move a state
into another backend (a fresh clone, local to PostgreSQL) without losing a resource's key
digests (its next run would re-run every request) or a shard's request keys (its results could
not be told apart); a pushed state that refers to blobs nobody has is refused, naming them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from reconciler.state import codec
from reconciler.state.document import State
from reconciler.state.registry import open_backend
from reconciler.state.request_keys import (
    KEY_DIGESTS_BLOB,
    REQUEST_KEYS_BLOB,
    key_digests_blob,
    load_key_digests,
    load_request_keys,
    request_keys_blob,
)
from tests.integration.state.helpers import project_for, record
from tests.integration.state.test_state_cli import run

DIGESTS = {"k1": "0123456789abcdef", "k2": "fedcba9876543210"}
KEYS = ["k2", "k1"]


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text("state: state/team.state.json\n")
    return root


def _seed_with_blobs(project: Path) -> State:
    """A state of one resource whose key digests and shard request keys live in blobs."""
    digests, keys = key_digests_blob(DIGESTS), request_keys_blob(KEYS)
    base = record("eval", attempts=1)
    attempt = base.attempts[0].model_copy(update={"shard": 0, "request_keys_file": keys.sha256})
    resource = base.model_copy(update={"key_digests_ref": digests.sha256, "attempts": (attempt,)})
    backend = open_backend(project_for(project, "state/team.state.json"))
    try:
        backend.put_blobs((digests, keys))
        return backend.write(backend.read().with_resource(resource), 0)
    finally:
        backend.close()


@pytest.fixture(params=["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the state moves to: a fresh local state, or a fresh PostgreSQL workspace."""
    if request.param == "local":
        return str(tmp_path / "clone" / "state" / "team.state.json")
    url: str = request.getfixturevalue("postgres_url")
    return f"{url}?workspace=moved-{uuid.uuid4().hex[:8]}"


def test_a_pulled_state_pushed_into_another_backend_keeps_every_blob_it_refers_to(
    tmp_path: Path, target: str
) -> None:
    source = _project(tmp_path / "origin")
    original = _seed_with_blobs(source)
    pulled = run(source, "state", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stderr == b""
    clone = _project(tmp_path / "clone")
    (clone / "moved.json").write_bytes(pulled.stdout)

    pushed = run(clone, "state", "push", "moved.json", state=target)

    assert pushed.returncode == 0, pushed.stderr
    backend = open_backend(project_for(clone, target))
    try:
        moved = backend.read()
        assert moved.resources == original.resources
        record_ = moved.resources["eval"]
        assert load_key_digests(backend, moved) == {"eval": DIGESTS}
        assert load_request_keys(backend, record_.attempts[0].request_keys_file or "") == KEYS
    finally:
        backend.close()


def test_a_state_file_whose_blobs_the_backend_lacks_is_refused_naming_them(
    tmp_path: Path,
) -> None:
    source = _project(tmp_path / "origin")
    original = _seed_with_blobs(source)
    clone = _project(tmp_path / "clone")
    # The stored form (as committed to git) refers to its blobs instead of carrying them.
    (clone / "old.json").write_text(codec.self_contained(original).decode())

    refused = run(clone, "state", "push", "old.json")

    assert refused.returncode == 1
    err = refused.stderr.decode()
    assert "old.json refers to 2 blob(s) that it does not carry and this backend does not hold" in (
        err
    )
    assert "eval's key digests" in err and "eval's request keys of attempt 1 shard 0" in err
    assert "Traceback" not in err
    assert not (clone / "state" / "team.state.json").exists(), "nothing was written"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda text: text.replace('"k1"', '"kX"', 1), id="edited-text"),
        pytest.param(lambda text: 7, id="not-text"),
    ],
)
def test_a_carried_blob_that_does_not_match_its_address_is_refused(
    tmp_path: Path, tamper: object
) -> None:
    source = _project(tmp_path / "origin")
    _seed_with_blobs(source)
    document = json.loads(run(source, "state", "pull").stdout)
    address = next(a for a in document["carried_blobs"] if a.startswith(REQUEST_KEYS_BLOB))
    document["carried_blobs"][address] = tamper(document["carried_blobs"][address])  # type: ignore[operator]
    clone = _project(tmp_path / "clone")
    (clone / "tampered.json").write_text(json.dumps(document))

    refused = run(clone, "state", "push", "tampered.json")

    assert refused.returncode == 1
    assert b"Traceback" not in refused.stderr
    assert b"does not match its content's sha256" in refused.stderr or (
        b"is not a carried blob" in refused.stderr
    )
    assert not (clone / "state" / "team.state.json").exists()


def test_pull_warns_when_the_store_has_lost_a_blob_the_state_refers_to(tmp_path: Path) -> None:
    source = _project(tmp_path / "origin")
    state = _seed_with_blobs(source)
    digests = state.resources["eval"].key_digests_ref
    (source / "state" / "blobs" / KEY_DIGESTS_BLOB / str(digests)).unlink()

    pulled = run(source, "state", "pull")

    assert pulled.returncode == 0
    assert b"warning: 1 blob(s) the state refers to are missing" in pulled.stderr
    assert b"eval's key digests" in pulled.stderr
    assert str(digests).encode() not in pulled.stdout.split(b'"resources"')[0]
