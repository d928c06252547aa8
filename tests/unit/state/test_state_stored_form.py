"""Format 6's stored form: details in a blob, derived fields left out, times to the second."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.state_writes import settled_record
from reconciler.live.tags import IdentityTag, project_token
from reconciler.plan import make_plan
from reconciler.state import codec
from reconciler.state.document import (
    AttemptPurpose,
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
    TokenUsage,
)
from reconciler.state.migrations import V6_DERIVED, StateFormatError
from reconciler.state.stored_form import _RULES, DETAILS_BLOB, BlobSource, standard_tag
from tests.fixtures.properties import examples
from tests.unit.plan.test_planner_converges import worlds

T0 = datetime(2026, 12, 2, 18, 32, 46, tzinfo=UTC)
SETTLED_BYTES_LIMIT = 600
"""Issue 22: a settled single-job resource takes at most this many bytes of the document."""


def blobs_of(*states: State) -> BlobSource:
    stored = {a: b.data for state in states for a, b in codec.state_blobs(state).items()}
    return lambda addresses: {a: stored[a] for a in addresses if a in stored}


def round_trip(state: State) -> State:
    return codec.decode(codec.encode(state), source="s", blobs=blobs_of(state))


def to_the_second(state: State) -> State:
    """`state` with every time at the stored precision (what decoding gives back)."""
    raw = codec.decode(codec.self_contained(state), source="s").model_dump()
    return State.model_validate(raw)


# -- strategies: every field of a record, values a derivation rule may or may not match ---------

moments = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
)
times = st.none() | moments
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)
small = st.integers(0, 5)


@st.composite
def records(draw: st.DrawFn, name: str) -> ResourceRecord:
    spec = draw(st.sampled_from(["a" * 64, "b" * 64]))
    model = draw(st.sampled_from([None, "gemini-2.5-flash"]))
    requests = draw(st.sampled_from([None, 3]))
    replacing: dict[str, object] = {}
    if model is not None:
        replacing["model"] = model
    if requests is not None:
        inline = draw(st.booleans())
        replacing["source"] = {"inline": inline, "requests": requests, "sha256": "c" * 64}
    source = draw(
        st.none()
        | st.builds(
            InputRecord,
            sha256=hexes,
            bytes=small,
            request_count=small,
            file_name=st.sampled_from([None, "files/in"]),
            uploaded_at=times,
            expires_at=times,
        )
    )
    attempts = []
    for number in range(1, draw(st.integers(0, 3)) + 1):
        job = draw(
            st.sampled_from([None, f"batches/{name}-{number}", f"projects/p/jobs/{name}-{number}"])
        )
        ended = draw(times)
        intent = draw(moments)
        shard = draw(st.sampled_from([None, 0, 1]))
        rerun = draw(st.sampled_from([0, 1]))
        own_spec = draw(st.sampled_from([spec, "d" * 64]))
        token = draw(st.sampled_from([project_token("p"), project_token("l")]))
        standard = standard_tag(token, name, own_spec, number, shard, rerun)
        attempts.append(
            JobAttempt(
                number=number,
                tag=draw(st.sampled_from([standard, "[rc:legacy@aaaaaaaaaaaa:1]"])),
                spec_hash=own_spec,
                purpose=draw(st.sampled_from(list(AttemptPurpose))),
                shard=shard,
                rerun=rerun,
                request_count=draw(st.sampled_from([None, 3, 2])),
                job_name=job,
                input_file=draw(st.sampled_from([None, "files/in", "files/other"])),
                state=draw(st.sampled_from(list(JobState))),
                intent_at=intent,
                created_at=draw(st.sampled_from([None, intent, ended])),
                updated_at=draw(st.sampled_from([None, ended, intent])),
                ended_at=ended,
                output_file=draw(
                    st.sampled_from([None, f"files/batch-{name}-{number}", "gs://b/o.jsonl"])
                ),
                endpoint=draw(st.sampled_from([None, "gemini", "vertex"])),
                usage=draw(
                    st.none()
                    | st.builds(
                        TokenUsage,
                        prompt=small,
                        output=small,
                        model=st.sampled_from([None, "gemini-2.5-flash", "other"]),
                    )
                ),
                cost_usd=draw(st.sampled_from([None, 0.0015])),
                collected_at=draw(times),
                input_deleted_at=draw(times),
            )
        )
    results = None
    if draw(st.booleans()):
        numbers = [a.number for a in attempts]
        results = ResultsRecord(
            location=f"results/{name}.jsonl",
            sha256="e" * 64,
            bytes=draw(small),
            succeeded=draw(small),
            failed=draw(small),
            collected_at=draw(moments),
            from_attempts=tuple(draw(st.lists(st.sampled_from(numbers or [1]), unique=True))),
        )
    return ResourceRecord(
        name=name,
        spec_hash=spec,
        replacing=replacing,
        in_place=draw(st.sampled_from([{}, {"output": f"results/{name}.jsonl"}])),
        input=source,
        attempts=tuple(attempts),
        results=results,
        key_digests_ref=draw(st.none() | hexes),
    )


@st.composite
def states(draw: st.DrawFn) -> State:
    state = State(lineage="l", project=draw(st.sampled_from([None, "p"])), serial=3)
    for name in draw(st.lists(st.sampled_from(["a", "b", "c-d"]), unique=True)):
        state = state.with_resource(draw(records(name)))
    return state


@pytest.mark.property
@settings(max_examples=examples(100), deadline=None)
@given(states())
def test_decoding_the_stored_form_gives_the_state_back_at_the_stored_precision(
    state: State,
) -> None:
    decoded = round_trip(state)
    assert decoded == to_the_second(state)
    assert codec.encode(decoded) == codec.encode(state)  # canonical: stable once stored
    # The self-contained form (`state pull`) decodes to the same state without any blob.
    assert codec.decode(codec.self_contained(state), source="s") == decoded


@settings(max_examples=50, deadline=None)
@given(states())
def test_a_state_whose_times_are_whole_seconds_round_trips_exactly(state: State) -> None:
    exact = to_the_second(state)
    assert round_trip(exact) == exact


@pytest.mark.property
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_plan_over_the_stored_state_is_the_plan_over_the_state_in_memory(
    world: tuple[object, State, object, dict[str, dict[str, str]]],
) -> None:
    d, s, lv, previous = world
    before = make_plan(d, s, lv, created_at=T0, previous_key_digests=previous)  # type: ignore[arg-type]
    after = make_plan(d, round_trip(s), lv, created_at=T0, previous_key_digests=previous)  # type: ignore[arg-type]
    assert after == before


@given(
    st.sampled_from(["a", "eval-00001"]),
    hexes,
    st.integers(1, 30),
    st.sampled_from([None, 0, 3]),
    st.integers(0, 2),
)
def test_the_standard_tag_is_the_identity_tag_apply_writes(
    resource: str, spec: str, number: int, shard: int | None, rerun: int
) -> None:
    token = project_token("p")
    expected = IdentityTag(resource, spec, number, shard, rerun, project=token)
    assert standard_tag(token, resource, spec, number, shard, rerun) == str(expected)


def test_a_settled_single_job_resource_takes_at_most_600_bytes_of_the_document() -> None:
    state = State(lineage="l", project="p")
    for i in range(100):
        state = state.with_resource(settled_record(i))
    empty = len(codec.encode(State(lineage="l", project="p")))
    per_resource = (len(codec.encode(state)) - empty) / 100
    assert per_resource <= SETTLED_BYTES_LIMIT
    # What stays on the line is what a reviewer reads; the rest is in the blob.
    line = json.loads(codec.encode_record(settled_record(0)))
    assert set(line) == {"applied", "attempts", "results"}
    assert line["attempts"][0]["job_name"].startswith("batches/")
    assert line["results"]["location"] == "results/eval-00000.jsonl"
    assert round_trip(state) == to_the_second(state)


def test_a_missing_details_blob_names_the_blob_and_how_to_restore_it() -> None:
    state = State(lineage="l").with_resource(settled_record(0))
    blob = codec.record_blob(settled_record(0))
    assert blob is not None
    with pytest.raises(StateFormatError) as caught:
        codec.decode(codec.encode(state), source="state file s.json")
    message = str(caught.value)
    assert (
        f"record `eval-00000` keeps its applied spec and input in blob {DETAILS_BLOB}/" in message
    )
    assert blob.sha256 in message
    assert caught.value.hint is not None
    assert "restore the missing blob from version control" in caught.value.hint


def test_a_blob_that_is_not_a_records_details_is_refused() -> None:
    state = State(lineage="l").with_resource(settled_record(0))
    blob = codec.record_blob(settled_record(0))
    assert blob is not None
    with pytest.raises(StateFormatError, match="is not a record's details"):
        codec.decode(codec.encode(state), source="s", blobs=lambda _: {blob.sha256: b"[1]"})


def test_a_record_both_referring_to_and_spelling_out_its_details_is_refused() -> None:
    state = State(lineage="l").with_resource(settled_record(0))
    raw = json.loads(codec.encode(state))
    raw["resources"]["eval-00000"]["replacing"] = {}
    with pytest.raises(StateFormatError, match="both refers to a details blob and spells out"):
        codec.decode(json.dumps(raw), source="s", blobs=blobs_of(state))


def test_a_version_five_record_keeps_the_defaults_it_left_out() -> None:
    """Version 5 left out fields at their default (None); version 6 leaves out derived ones.
    A version 5 record is read as written, not as if its gaps were derived."""
    v5 = {
        "format_version": 5,
        "lineage": "l",
        "serial": 1,
        "resources": {
            "a": {
                "spec_hash": "a" * 64,
                "replacing": {"model": "m", "source": {"requests": 3}},
                "input": {"sha256": "c" * 64, "bytes": 1, "request_count": 3, "file_name": "f"},
                "attempts": [
                    {
                        "number": 1,
                        "tag": "[rc:a@aaaaaaaaaaaa:1]",
                        "job_name": "batches/x",
                        "state": "SUCCEEDED",
                        "intent_at": "2026-01-01T00:00:00Z",
                        "ended_at": "2026-01-01T00:00:05Z",
                        "usage": {"prompt": 1},
                    }
                ],
                "results": {
                    "location": "r.jsonl",
                    "sha256": "e" * 64,
                    "bytes": 1,
                    "succeeded": 1,
                    "failed": 0,
                    "collected_at": "2026-01-01T00:00:06Z",
                },
            }
        },
    }
    state = codec.decode(json.dumps(v5), source="s")
    record = state.resources["a"]
    attempt = record.attempts[0]
    assert (attempt.created_at, attempt.updated_at, attempt.output_file) == (None, None, None)
    assert (attempt.input_file, attempt.request_count, attempt.endpoint) == (None, None, None)
    assert attempt.collected_at is None and attempt.usage is not None
    assert attempt.usage.model is None
    assert record.results is not None and record.results.from_attempts == ()
    assert round_trip(state) == state  # rewritten in the new form, same content


def test_the_version_six_migration_spells_out_every_field_a_rule_derives() -> None:
    assert set(V6_DERIVED) == set(_RULES)
