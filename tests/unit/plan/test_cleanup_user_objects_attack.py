"""A `source.gcs` object Vertex read in place is the user's data: cleanup never deletes it,
whatever its name looks like. Today the predicate (`live.wire.is_staged_input`) decides by the
name's shape alone, so a user's content-addressed object (a data lake that names files by their
sha256 under an `inputs/` folder) reads as one reconciler staged, and apply deletes it after
collecting the job."""

from __future__ import annotations

import pytest

from reconciler.config import Cleanup
from reconciler.plan.cleanup import FileRole, pending_cleanup
from reconciler.state.document import JobState, State
from tests.unit.plan.factories import attempt, record, resource, results, state

SHA = "ab" * 32


def _collected_from(input_file: str) -> State:
    res = resource("eval")
    done = attempt(res, state=JobState.SUCCEEDED).model_copy(
        update={"input_file": input_file, "output_file": "gs://lake/out/predictions.jsonl"}
    )
    return state(record(res, done, results=results(res)))


@pytest.mark.xfail(
    strict=True,
    reason="staged-ness is read from the object's name (wire.is_staged_input), not recorded "
    "when the adapter stages it or checked against this project's staging folder and token: "
    "the fix changes plan/cleanup.py's predicates and what apply records (attempt or input)",
)
@pytest.mark.parametrize(
    "user_object",
    [f"gs://lake/runs/inputs/{SHA}.jsonl", f"gs://lake/inputs/other-team/{SHA}.jsonl"],
    ids=["content-addressed under inputs/", "another team's folder under inputs/"],
)
def test_a_users_content_addressed_source_object_is_never_deleted(user_object: str) -> None:
    pending = pending_cleanup(_collected_from(user_object), Cleanup())
    assert [p.role for p in pending] == [FileRole.RESULTS]
