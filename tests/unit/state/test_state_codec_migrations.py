"""Canonical encoding, decoding errors, and forward migration of older format versions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.state import codec
from reconciler.state.document import FORMAT_VERSION, ResourceRecord, State
from reconciler.state.migrations import StateFormatError, migrate


def sample() -> State:
    return (
        State(lineage="l", serial=4)
        .with_resource(ResourceRecord(name="b", spec_hash="hb"))
        .with_resource(ResourceRecord(name="a", spec_hash="ha"))
    )


def test_encoding_is_sorted_indented_and_round_trips() -> None:
    data = codec.encode(sample())
    text = data.decode()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "format_version": 4,\n  "lineage": "l",')
    assert text.index('"a"') < text.index('"b"')
    assert codec.decode(data, source="s") == sample()
    assert codec.encode(codec.decode(data, source="s")) == data


def test_equal_states_encode_to_equal_bytes_whatever_insertion_order() -> None:
    other = (
        State(lineage="l", serial=4)
        .with_resource(ResourceRecord(name="a", spec_hash="ha"))
        .with_resource(ResourceRecord(name="b", spec_hash="hb"))
    )
    assert codec.encode(other) == codec.encode(sample())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"lineage": "l"}', "no integer `format_version`"),
        (b'{"format_version": 1, "serial": 1}', "`lineage`: Field required"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_corrupt_documents_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(StateFormatError, match=message):
        codec.decode(data, source="state file x.json")


def test_newer_format_version_is_refused_with_upgrade_hint() -> None:
    raw = json.loads(codec.encode(sample()))
    raw["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(StateError) as caught:
        codec.decode(json.dumps(raw), source="state file x.json")
    assert not isinstance(caught.value, StateFormatError)  # not "corrupt": it is just newer
    newer = f"format version {FORMAT_VERSION + 1}, newer than this reconciler supports ({FORMAT_VERSION})"
    assert newer in str(caught.value)
    assert caught.value.hint is not None and "upgrade reconciler" in caught.value.hint


def test_current_version_document_needs_no_migration() -> None:
    raw = json.loads(codec.encode(sample()))
    assert migrate(raw, source="s") == raw


def test_version_one_state_loads_with_every_attempt_a_first_run() -> None:
    """Version 1 did not record shard reruns or request counts; its attempts are first runs."""
    v1 = {
        "format_version": 1,
        "lineage": "l",
        "serial": 3,
        "resources": {
            "a": {
                "name": "a",
                "spec_hash": "ha",
                "attempts": [
                    {
                        "number": 1,
                        "tag": "[rc:a@000000000000:1.s0]",
                        "spec_hash": "ha",
                        "shard": 0,
                        "job_name": "batches/1",
                        "state": "FAILED",
                        "intent_at": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        },
    }
    state = codec.decode(json.dumps(v1), source="s")
    assert state.format_version == FORMAT_VERSION == 4
    attempt = state.resources["a"].attempts[0]
    assert (attempt.rerun, attempt.request_count, attempt.job_name) == (0, None, "batches/1")
    # Version 3: no project id was recorded and nothing was tombstoned.
    assert (state.project, state.tombstones, state.identity) == (None, {}, "l")
    # Version 4: the job ran on the Developer API; nothing about its usage was recorded.
    assert (attempt.endpoint, attempt.usage, attempt.cost_usd, attempt.collected_at) == (
        None,
        None,
        None,
        None,
    )


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Synthetic version 0: `version`/`jobs` keys, resources as a list of {name, hash}."""
    return {
        "format_version": 1,
        "lineage": doc["lineage"],
        "serial": doc["serial"],
        "resources": {
            job["name"]: {"name": job["name"], "spec_hash": job["hash"]} for job in doc["jobs"]
        },
    }


def test_synthetic_version_zero_document_migrates_forward() -> None:
    v0 = {
        "format_version": 0,
        "lineage": "old",
        "serial": 7,
        "jobs": [{"name": "b", "hash": "hb"}, {"name": "a", "hash": "ha"}],
    }
    migrated = migrate(v0, source="s", steps={0: _v0_to_v1}, current=1)
    state = State.model_validate(migrated)
    assert state.lineage == "old" and state.serial == 7
    assert state.resources["a"].spec_hash == "ha"
    assert v0["format_version"] == 0  # the input is not modified


def test_migrations_chain_across_several_versions() -> None:
    def step(to: int) -> Any:
        return lambda doc: {**doc, "format_version": to, f"v{to}": True}

    out = migrate(
        {"format_version": 0}, source="s", steps={0: step(1), 1: step(2), 2: step(3)}, current=3
    )
    assert out == {"format_version": 3, "v1": True, "v2": True, "v3": True}


def test_missing_or_broken_migration_is_refused() -> None:
    with pytest.raises(StateFormatError, match="no migration to version 1"):
        migrate({"format_version": 0}, source="s", steps={}, current=1)
    with pytest.raises(StateFormatError, match="produced version 0, expected 1"):
        migrate({"format_version": 0}, source="s", steps={0: lambda d: d}, current=1)
