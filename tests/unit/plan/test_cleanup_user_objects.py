"""A `source.gcs` object Vertex read in place is the user's data: cleanup never deletes it,
whatever its name looks like. The name's shape is not enough (a data lake may name its objects by
their sha256 under an `inputs/` folder): only an input staged under this project's own owner
folder (`<staging>/inputs/<project token>/`) is one reconciler staged and may delete."""

from __future__ import annotations

import pytest

from reconciler.config import Cleanup
from reconciler.plan.cleanup import FileRole, owners, pending_cleanup
from reconciler.state.document import JobState, State
from tests.unit.plan.factories import attempt, record, resource, results, state

SHA = "ab" * 32


def _collected_from(input_file: str) -> State:
    res = resource("eval")
    done = attempt(res, state=JobState.SUCCEEDED).model_copy(
        update={"input_file": input_file, "output_file": "gs://lake/out/predictions.jsonl"}
    )
    return state(record(res, done, results=results(res)))


@pytest.mark.parametrize(
    "user_object",
    [
        f"gs://lake/runs/inputs/{SHA}.jsonl",
        f"gs://lake/inputs/other-team/{SHA}.jsonl",
        f"gs://lake/staging/inputs/{'0' * 12}/{SHA}.jsonl",
    ],
    ids=[
        "content-addressed under inputs/",
        "another team's folder under inputs/",
        "another project's staged input",
    ],
)
def test_a_users_content_addressed_source_object_is_never_deleted(user_object: str) -> None:
    pending = pending_cleanup(_collected_from(user_object), Cleanup())
    assert [p.role for p in pending] == [FileRole.RESULTS]


def test_an_input_staged_under_this_projects_own_folder_is_deleted_after_collection() -> None:
    token = sorted(owners(_collected_from("gs://x/y.jsonl")))[0]
    staged = f"gs://lake/staging/inputs/{token}/{SHA}.jsonl"
    pending = pending_cleanup(_collected_from(staged), Cleanup())
    assert [(p.role, p.file_name) for p in pending] == [
        (FileRole.INPUT, staged),
        (FileRole.RESULTS, "gs://lake/out/predictions.jsonl"),
    ]
