"""plan/cleanup.py: the files the state says are left to delete become plan data, under the same
rules apply's cleanup follows (settings, ended groups, inputs still read, BigQuery tables)."""

from __future__ import annotations

import pytest

from reconciler.config import Cleanup
from reconciler.errors import StalePlanError
from reconciler.manifests.desired import Desired
from reconciler.plan.cleanup import FileRole, PendingDelete, owners, pending_cleanup
from reconciler.plan.planfile import verified_plan
from reconciler.state.document import JobState, MediaUpload, State
from tests.unit.plan.factories import T0, attempt, live, plan, record, resource, results, state

ALL = Cleanup()


def _collected(name: str = "eval", **marks: object) -> State:
    res = resource(name)
    done = attempt(res, state=JobState.SUCCEEDED).model_copy(
        update={"input_file": f"files/{name}-input", "output_file": f"files/batch-{name}", **marks}
    )
    return state(record(res, done, results=results(res)))


def _desired(s: State) -> Desired:
    resources = {name: resource(name) for name in s.resources}
    return Desired(resources=resources, manifests_sha256="m")


def test_a_collected_attempt_with_unrecorded_deletes_is_pending() -> None:
    assert pending_cleanup(_collected(), ALL) == (
        PendingDelete("eval", 1, "files/eval-input", FileRole.INPUT),
        PendingDelete("eval", 1, "files/batch-eval", FileRole.RESULTS),
    )


def test_recorded_deletes_and_kept_results_files_are_not_pending() -> None:
    s = _collected(input_deleted_at=T0, output_kept="the service refused (403)")
    assert pending_cleanup(s, ALL) == ()
    s = _collected(input_deleted_at=T0, output_deleted_at=T0)
    assert pending_cleanup(s, ALL) == ()


def test_the_settings_decide_which_files_are_pending() -> None:
    s = _collected()
    assert [p.role for p in pending_cleanup(s, Cleanup(results=False))] == [FileRole.INPUT]
    assert [p.role for p in pending_cleanup(s, Cleanup(inputs=False))] == [FileRole.RESULTS]
    assert pending_cleanup(s, Cleanup(inputs=False, results=False)) == ()


def test_an_input_another_running_job_reads_is_not_pending() -> None:
    s = _collected()
    other = resource("other")
    running = attempt(other).model_copy(update={"input_file": "files/eval-input"})
    s = s.with_resource(record(other, running))
    assert [p.role for p in pending_cleanup(s, ALL)] == [FileRole.RESULTS]


def test_an_uncollected_or_unended_attempt_is_not_pending() -> None:
    res = resource("eval")
    running = attempt(res).model_copy(update={"input_file": "files/eval-input"})
    assert pending_cleanup(state(record(res, running)), ALL) == ()
    ended = attempt(res, state=JobState.SUCCEEDED).model_copy(
        update={"input_file": "files/eval-input"}
    )
    assert pending_cleanup(state(record(res, ended)), ALL) == ()


def test_bigquery_tables_are_never_pending() -> None:
    s = _collected(input_file="bq://p.d.source", output_file="bq://p.d.results")
    assert pending_cleanup(s, ALL) == ()


def test_a_cloud_storage_source_read_in_place_is_never_pending() -> None:
    """A `source.gcs` object is the user's; only what reconciler staged is deleted."""
    user_object = _collected(input_file="gs://data/evals/questions.jsonl")
    assert [p.role for p in pending_cleanup(user_object, ALL)] == [FileRole.RESULTS]
    look_alike = _collected(input_file="gs://data/inputs/questions.jsonl")
    assert [p.role for p in pending_cleanup(look_alike, ALL)] == [FileRole.RESULTS]
    collected = _collected(input_file="gs://x/y.jsonl")
    token = sorted(owners(collected))[0]
    staged = f"gs://stage/reconciler/inputs/{token}/{'ab' * 32}.jsonl"
    assert pending_cleanup(_collected(input_file=staged), ALL)[0] == PendingDelete(
        "eval", 1, staged, FileRole.INPUT
    )


def test_targets_restrict_the_pending_cleanup() -> None:
    s = _collected("a").with_resource(_collected("b").resources["b"])
    assert {p.resource for p in pending_cleanup(s, ALL, ["b"])} == {"b"}


def test_the_plan_counts_pending_cleanup_as_a_change() -> None:
    s = _collected()
    made = plan(_desired(s), s, live(), cleanup=ALL)
    assert len(made.cleanup) == 2
    assert made.has_changes and not made.summary.has_changes
    done = _collected(input_deleted_at=T0, output_deleted_at=T0)
    assert not plan(_desired(done), done, live(), cleanup=ALL).has_changes


def test_a_saved_plan_approves_exactly_the_deletions_it_lists() -> None:
    s = _collected()
    derived = plan(_desired(s), s, live(), cleanup=ALL)
    assert verified_plan(derived, derived).cleanup == derived.cleanup
    narrowed = plan(_desired(s), s, live(), cleanup=Cleanup(results=False))
    with pytest.raises(StalePlanError, match="leaves out the deletion of results file"):
        verified_plan(narrowed, derived)
    done = _collected(input_deleted_at=T0, output_deleted_at=T0)
    now = plan(_desired(done), done, live(), cleanup=ALL)
    with pytest.raises(StalePlanError, match="would delete input file"):
        verified_plan(derived, now)


def _with_media(s: State, name: str, *, deleted: bool = False, running: bool = False) -> State:
    record = s.resources[name]
    upload = MediaUpload(
        file_name="files/cat",
        uri="https://service/files/cat",
        sha256="c" * 64,
        deleted_at=T0 if deleted else None,
    )
    state_of = JobState.RUNNING if running else JobState.SUCCEEDED
    attempts = tuple(
        a.model_copy(update={"media": (upload,), "state": state_of}) for a in record.attempts
    )
    return s.with_resource(record.model_copy(update={"attempts": attempts}))


def test_media_uploads_of_a_collected_attempt_are_pending_as_inputs_are() -> None:
    s = _with_media(_collected(input_deleted_at=T0, output_deleted_at=T0), "eval")
    assert pending_cleanup(s, ALL) == (PendingDelete("eval", 1, "files/cat", FileRole.MEDIA),)
    assert pending_cleanup(s, Cleanup(inputs=False)) == ()
    done = _with_media(_collected(input_deleted_at=T0, output_deleted_at=T0), "eval", deleted=True)
    assert pending_cleanup(done, ALL) == ()


def test_media_another_running_job_references_is_not_pending() -> None:
    s = _with_media(_collected(input_deleted_at=T0, output_deleted_at=T0), "eval")
    other = resource("other")
    s = s.with_resource(record(other, attempt(other)))
    s = _with_media(s, "other", running=True)
    assert pending_cleanup(s, ALL) == ()
