"""The planner adopts only its own project's jobs, and never a destroyed resource's."""

from __future__ import annotations

import dataclasses

from reconciler.live.snapshot import LiveJob
from reconciler.plan import ActionKind, make_plan
from reconciler.state.document import JobState, State
from tests.unit.plan.factories import (
    T0,
    attempt,
    desired,
    job,
    live,
    record,
    resource,
    state,
    tag,
)


def tagged_job(name: str, display_tag: str) -> LiveJob:
    """A running job at the service named `name` whose display_name ends in `display_tag`."""
    return dataclasses.replace(job(resource(), name=name), display_name=f"eval {display_tag}")


def plan_for(st: State, *jobs: LiveJob) -> ActionKind:
    res = resource()
    planned = make_plan(desired(res), st, live(*jobs), created_at=T0)
    (action,) = planned.actions
    return action.kind


def test_a_job_tagged_by_another_project_is_not_adopted() -> None:
    res = resource()
    theirs = tag(res.name, res.spec_hash, 1, project="another-lineage")
    assert plan_for(state(), tagged_job("batches/theirs", theirs)) is ActionKind.CREATE


def test_a_job_tagged_by_this_project_is_adopted() -> None:
    res = resource()
    ours = tag(res.name, res.spec_hash, 1)
    assert plan_for(state(), tagged_job("batches/ours", ours)) is ActionKind.ADOPT


def test_a_tag_without_project_is_adopted_only_where_the_state_records_its_intent() -> None:
    res = resource()
    legacy = tag(res.name, res.spec_hash, 1, project=None)
    assert plan_for(state(), tagged_job("batches/legacy", legacy)) is ActionKind.CREATE
    intent = attempt(res, 1, job_name=None).model_copy(update={"tag": legacy})
    recorded = state(record(res, intent))
    planned = make_plan(
        desired(res), recorded, live(tagged_job("batches/legacy", legacy)), created_at=T0
    )
    assert planned.actions[0].kind is ActionKind.ADOPT


def test_a_destroyed_resources_jobs_are_never_adopted_and_its_next_attempt_follows_them() -> None:
    res = resource()
    destroyed = tag(res.name, res.spec_hash, 2)
    st = state().model_copy(update={"tombstones": {res.name: 2}})
    planned = make_plan(
        desired(res), st, live(tagged_job("batches/destroyed", destroyed)), created_at=T0
    )
    (action,) = planned.actions
    assert action.kind is ActionKind.CREATE
    assert action.next_attempt == 3


def test_a_succeeded_job_whose_responses_are_unproven_is_resubmitted_not_collected() -> None:
    res = resource()
    done = attempt(res, 1, state=JobState.SUCCEEDED).model_copy(
        update={"results_unusable": "inline responses came back without their keys"}
    )
    succeeded = dataclasses.replace(job(done), state=JobState.SUCCEEDED)
    planned = make_plan(desired(res), state(record(res, done)), live(succeeded), created_at=T0)
    (action,) = planned.actions
    assert action.kind is ActionKind.RESUBMIT
    assert action.next_attempt == 2
