"""Which deletes cleanup never sends: a Files API id over 40 characters (every results file a
batch job writes, python-genai #1759) is refused whatever its state, so such a results file is
recorded as left to expire, and neither the plan nor a later apply lists it as a delete."""

from __future__ import annotations

import pytest

from reconciler.apply.cleanup import LEFT_TO_EXPIRE, mark_left_to_expire
from reconciler.config import Cleanup
from reconciler.live.wire import FILE_ID_DELETE_LIMIT, refuses_delete
from reconciler.plan.cleanup import FileRole, PendingDelete, pending_cleanup
from reconciler.state.document import JobAttempt, JobState, State
from tests.unit.plan.factories import T0, attempt, record, resource, results, state

JOB_ID = "ncdlxnfztvvdy7lv52g4s7ge6l385vi46eyi"  # 36 characters, as the service makes them
RESULTS = f"files/batch-{JOB_ID}"


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        (RESULTS, True),
        ("files/" + "a" * FILE_ID_DELETE_LIMIT, False),
        ("files/" + "a" * (FILE_ID_DELETE_LIMIT + 1), True),
        ("files/abc123def456", False),
        ("gs://bucket/predictions/" + "a" * 64 + "/predictions.jsonl", False),
        ("bq://project.dataset.results", False),
    ],
)
def test_the_files_api_refuses_to_delete_ids_over_forty_characters(
    name: str, refused: bool
) -> None:
    assert refuses_delete(name) is refused


def _attempt(output_file: str, **marks: object) -> JobAttempt:
    done = attempt(resource("eval"), state=JobState.SUCCEEDED)
    return done.model_copy(
        update={"input_file": "files/eval-input", "output_file": output_file, **marks}
    )


def _collected(output_file: str) -> State:
    res = resource("eval")
    return state(record(res, _attempt(output_file), results=results(res)))


def test_a_refused_results_file_is_not_a_pending_delete() -> None:
    assert pending_cleanup(_collected(RESULTS), Cleanup()) == (
        PendingDelete("eval", 1, "files/eval-input", FileRole.INPUT),
    )
    deletable = "files/batch-short"
    assert PendingDelete("eval", 1, deletable, FileRole.RESULTS) in pending_cleanup(
        _collected(deletable), Cleanup()
    )


def test_a_refused_results_file_is_recorded_as_left_to_expire_when_results_are_cleaned() -> None:
    assert mark_left_to_expire(_attempt(RESULTS), Cleanup()).output_kept == LEFT_TO_EXPIRE
    assert "expires after 48 h" in LEFT_TO_EXPIRE
    # It is on every settled resource's line of the committed state (issue 22: <= 600 B each).
    assert len(LEFT_TO_EXPIRE) <= 64


@pytest.mark.parametrize(
    ("output_file", "settings", "marks"),
    [
        (RESULTS, Cleanup(results=False), {}),
        ("files/batch-short", Cleanup(), {}),
        (RESULTS, Cleanup(), {"output_deleted_at": T0}),
        (RESULTS, Cleanup(), {"output_kept": "the service refused to delete it (403)"}),
    ],
)
def test_nothing_else_is_marked_left_to_expire(
    output_file: str, settings: Cleanup, marks: dict[str, object]
) -> None:
    before = _attempt(output_file, **marks)
    assert mark_left_to_expire(before, settings) is before
