"""Canonical encoding, decoding errors, and forward migration of older format versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.state import codec
from reconciler.state.document import (
    FORMAT_VERSION,
    AttemptPurpose,
    InputRecord,
    InputShard,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
    TokenUsage,
)
from reconciler.state.migrations import StateFormatError, migrate
from reconciler.state.stored_form import BlobSource

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def full_record() -> ResourceRecord:
    """A record with every field of every part set to something other than its default."""
    attempt = JobAttempt(
        number=2,
        tag="[rc:p/a@aaaaaaaaaaaa:2.s1r1]",
        spec_hash="0" * 64,
        purpose=AttemptPurpose.RETRY_FAILED,
        shard=1,
        rerun=1,
        request_count=7,
        job_name="batches/j",
        input_file="files/i",
        state=JobState.SUCCEEDED,
        intent_at=T0,
        created_at=T0,
        updated_at=T0,
        ended_at=T0,
        error="e",
        output_file="files/o",
        request_keys_file="1" * 64,
        model="gemini-2.5-flash-lite",
        results_unusable="r",
        endpoint="vertex",
        base_url="emulator",
        usage=TokenUsage(prompt=1, output=2, thinking=3, cached=4, tool_use_prompt=5, responses=6),
        cost_usd=0.5,
        collected_at=T0,
    )
    return ResourceRecord(
        name="a",
        spec_hash="a" * 64,
        replacing={"model": "m", "source": {"sha256": "b" * 64}},
        in_place={"output": "results/a.jsonl", "labels": {"k": "v"}},
        input=InputRecord(
            sha256="c" * 64,
            bytes=10,
            request_count=7,
            file_name="files/i",
            uploaded_at=T0,
            expires_at=T0,
            shards=(InputShard(index=0, sha256="d" * 64, bytes=5, request_count=3, file_name="f"),),
        ),
        attempts=(attempt,),
        results=ResultsRecord(
            location="results/a.jsonl",
            sha256="e" * 64,
            bytes=3,
            succeeded=6,
            failed=1,
            collected_at=T0,
            from_attempts=(1, 2),
        ),
        key_digests_ref="f" * 64,
    )


def blobs_of(*states: State) -> BlobSource:
    """The details blobs of `states`, as a backend would hand them to decoding."""
    stored = {a: b.data for state in states for a, b in codec.state_blobs(state).items()}
    return lambda addresses: {a: stored[a] for a in addresses if a in stored}


def sample() -> State:
    return (
        State(lineage="l", serial=4)
        .with_resource(ResourceRecord(name="b", spec_hash="hb"))
        .with_resource(ResourceRecord(name="a", spec_hash="ha"))
    )


def test_encoding_puts_each_record_on_its_own_line_by_sorted_name_and_round_trips() -> None:
    data = codec.encode(sample())
    blob_a, blob_b = (codec.record_blob(sample().resources[n]) for n in "ab")
    assert blob_a is not None and blob_b is not None
    assert data.decode() == (
        "{\n"
        f'  "format_version": {FORMAT_VERSION},\n'
        '  "lineage": "l",\n'
        '  "resources": {\n'
        f'    "a": {{"applied":"{blob_a.sha256}"}},\n'
        f'    "b": {{"applied":"{blob_b.sha256}"}}\n'
        "  },\n"
        '  "serial": 4,\n'
        '  "tombstones": {}\n'
        "}\n"
    )
    assert blob_a.data == b'{"spec_hash":"ha"}'
    decoded = codec.decode(data, source="s", blobs=blobs_of(sample()))
    assert decoded == sample()
    assert codec.encode(decoded) == data


def test_tombstones_and_project_are_one_line_each() -> None:
    state = State(lineage="l", project="p", tombstones={"z": 3, "y": 1})
    text = codec.encode(state).decode()
    assert '  "project": "p",\n' in text
    assert '  "tombstones": {\n    "y": 1,\n    "z": 3\n  }\n}\n' in text
    assert codec.decode(text, source="s") == state


def test_a_record_leaves_out_its_name_its_defaults_and_its_attempts_own_spec_hash() -> None:
    attempt = JobAttempt(number=1, tag="t", spec_hash="h1", intent_at=T0)
    older = JobAttempt(number=2, tag="u", spec_hash="h0", intent_at=T0, state=JobState.FAILED)
    record = ResourceRecord(name="a", spec_hash="h1", attempts=(older, attempt))
    stored = json.loads(codec.encode_record(record))
    assert stored == {
        "applied": codec.record_blob(record).sha256,
        "attempts": [
            {
                "number": 2,
                "tag": "u",
                "spec_hash": "h0",
                "intent_at": "2026-01-01T00:00:00Z",
                "state": "FAILED",
                "endpoint": None,
            },
            {"number": 1, "tag": "t", "intent_at": "2026-01-01T00:00:00Z", "endpoint": None},
        ],
    }
    state = State(lineage="l").with_resource(record)
    assert codec.decode(codec.encode(state), source="s", blobs=blobs_of(state)) == state


def test_a_record_that_spells_out_another_name_than_its_key_is_refused() -> None:
    raw = json.loads(codec.encode(sample()))
    raw["resources"]["a"]["name"] = "b"
    with pytest.raises(StateFormatError, match="record `a` names itself `b`"):
        codec.decode(json.dumps(raw), source="s")


def test_version_four_document_with_every_field_set_loads_unchanged() -> None:
    """Version 4 spelled out every field and each record's name; version 6 reads it as is."""
    record = full_record()
    v4 = {
        "format_version": 4,
        "lineage": "l",
        "serial": 9,
        "project": "p",
        "resources": {"a": record.model_dump(mode="json")},
        "tombstones": {"gone": 2},
    }
    state = codec.decode(json.dumps(v4, indent=2), source="s")
    assert state.format_version == FORMAT_VERSION
    assert state.resources["a"] == record
    assert (state.lineage, state.serial, state.project, state.tombstones) == (
        "l",
        9,
        "p",
        {"gone": 2},
    )
    again = codec.encode(state)
    assert codec.decode(again, source="s", blobs=blobs_of(state)) == state
    assert len(again) < len(json.dumps(v4, indent=2, sort_keys=True))


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
    assert state.format_version == FORMAT_VERSION == 7
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


def test_a_version_six_document_loads_with_no_base_url_and_is_written_as_version_seven() -> None:
    """Version 7 adds where an attempt was created (`base_url`); version 6 never recorded it."""
    v6 = {
        "format_version": 6,
        "lineage": "l",
        "serial": 2,
        "resources": {
            "a": {
                "spec_hash": "h",
                "attempts": [
                    {
                        "number": 1,
                        "tag": "t",
                        "job_name": "batches/1",
                        "state": "RUNNING",
                        "intent_at": "2026-01-01T00:00:00Z",
                        "endpoint": None,
                    }
                ],
            }
        },
    }
    state = codec.decode(json.dumps(v6), source="s")
    (attempt,) = state.resources["a"].attempts
    assert (attempt.endpoint, attempt.base_url) == (None, None)
    assert b'"format_version": 7,' in codec.encode(state)


def test_a_recorded_base_url_round_trips() -> None:
    record = full_record()
    state = State(lineage="l", serial=1).with_resource(record)
    decoded = codec.decode(codec.encode(state), source="s", blobs=blobs_of(state))
    assert decoded.resources["a"].attempts[0].base_url == "emulator"
