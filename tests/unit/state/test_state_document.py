"""The state document model: content comparison, renames, intents, input file names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.state.document import (
    FORMAT_VERSION,
    InputRecord,
    InputShard,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def attempt(number: int = 1, job_name: str | None = "batches/1") -> JobAttempt:
    return JobAttempt(
        number=number,
        tag=f"[rc:a@{'0' * 12}:{number}]",
        spec_hash="0" * 64,
        job_name=job_name,
        intent_at=T0,
    )


def test_new_state_has_current_format_version_and_serial_zero() -> None:
    state = State(lineage="l")
    assert (state.format_version, state.serial, state.resources) == (FORMAT_VERSION, 0, {})


def test_same_content_ignores_serial_only() -> None:
    a = State(lineage="l", serial=3).with_resource(ResourceRecord(name="a", spec_hash="h"))
    assert a.same_content(a.model_copy(update={"serial": 9}))
    assert not a.same_content(a.with_resource(ResourceRecord(name="a", spec_hash="other")))
    assert not a.same_content(a.model_copy(update={"lineage": "m"}))


def test_rename_moves_record_and_its_name() -> None:
    state = State(lineage="l").with_resource(ResourceRecord(name="old", spec_hash="h"))
    renamed = state.with_resource_renamed("old", "new")
    assert list(renamed.resources) == ["new"]
    assert renamed.resources["new"].name == "new"
    with pytest.raises(KeyError):
        state.with_resource_renamed("missing", "x")
    with pytest.raises(KeyError):
        state.with_resource(ResourceRecord(name="new", spec_hash="h")).with_resource_renamed(
            "old", "new"
        )


def test_attempt_without_job_name_is_an_intent() -> None:
    intent = attempt(job_name=None)
    assert intent.is_intent and intent.state is JobState.UNKNOWN
    assert not attempt().is_intent


def test_input_file_names_cover_whole_file_and_shards() -> None:
    whole = InputRecord(sha256="s", bytes=1, request_count=1, file_name="files/a")
    assert whole.file_names == ("files/a",)
    sharded = InputRecord(
        sha256="s",
        bytes=2,
        request_count=2,
        shards=(
            InputShard(index=0, sha256="s0", bytes=1, request_count=1, file_name="files/s0"),
            InputShard(index=1, sha256="s1", bytes=1, request_count=1, file_name="files/s1"),
        ),
    )
    assert sharded.file_names == ("files/s0", "files/s1")
    assert InputRecord(sha256="s", bytes=0, request_count=0).file_names == ()


def test_terminal_states() -> None:
    assert JobState.SUCCEEDED.is_terminal and JobState.SUCCEEDED.is_success
    assert not JobState.RUNNING.is_terminal and not JobState.UNKNOWN.is_terminal


def test_full_record_round_trips_through_json() -> None:
    record = ResourceRecord(
        name="a",
        spec_hash="h",
        input=InputRecord(
            sha256="s", bytes=10, request_count=2, file_name="files/x", uploaded_at=T0
        ),
        attempts=(attempt(1), attempt(2, None)),
        results=ResultsRecord(
            location="results/a.jsonl",
            sha256="r",
            bytes=5,
            succeeded=1,
            failed=1,
            collected_at=T0,
            from_attempts=(1,),
        ),
    )
    state = State(lineage="l", serial=2).with_resource(record)
    assert State.model_validate_json(state.model_dump_json()) == state


def test_forgetting_a_resource_leaves_a_tombstone_of_its_highest_attempt() -> None:
    attempts = (attempt(1), attempt(2, job_name="batches/2"))
    state = State(lineage="l").with_resource(
        ResourceRecord(name="a", spec_hash="h", attempts=attempts)
    )
    gone = state.without_resource("a")
    assert "a" not in gone.resources and gone.tombstones == {"a": 2}
    # A record that never made a job leaves nothing to remember.
    never = State(lineage="l").with_resource(ResourceRecord(name="b", spec_hash="h"))
    assert never.without_resource("b").tombstones == {}


def test_the_identity_is_the_project_id_when_set_else_the_lineage() -> None:
    assert State(lineage="l").identity == "l"
    assert State(lineage="l", project="evals").identity == "evals"
