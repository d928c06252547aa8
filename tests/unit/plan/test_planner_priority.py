"""`spec.priority` is an in-place field: a new value reaches a job still in progress through
the service's update call and never makes a new job; an ended job keeps its own."""

from __future__ import annotations

import hashlib
import json

from reconciler.live.snapshot import Live
from reconciler.plan import ActionKind, Reason
from reconciler.state.document import JobState, State
from tests.unit.plan.factories import (
    attempt,
    desired,
    job,
    live,
    only,
    plan,
    record,
    resource,
    results,
    state,
)


def test_priority_is_not_part_of_the_spec_hash() -> None:
    assert resource(priority=5).spec_hash == resource().spec_hash == resource(priority=-2).spec_hash
    assert resource(priority=5).in_place_fields()["priority"] == 5
    assert "priority" not in resource().in_place_fields()


def test_config_priority_is_the_older_spelling_of_spec_priority() -> None:
    old_spelling = resource(config={"priority": 5})
    assert old_spelling.spec_hash == resource(priority=5).spec_hash
    assert old_spelling.in_place_fields() == resource(priority=5).in_place_fields()


def test_plan_updates_the_priority_of_a_running_job_in_place() -> None:
    old, new = resource(), resource(priority=5)
    att = attempt(old, 1, state=JobState.RUNNING)
    action = only(plan(desired(new), state(record(old, att)), live(job(att))))
    assert (action.kind, action.reason) == (ActionKind.UPDATE, Reason.PRIORITY_CHANGED)
    assert action.detail == "priority 0 -> 5, in place, no new job"
    assert action.job_names == (att.job_name,)
    assert (action.jobs, action.requests, action.estimated_cost_usd) == (0, 0, None)
    assert [(e.path, e.old, e.new, e.forces_replacement) for e in action.diff] == [
        ("priority", None, 5, False)
    ]


def test_plan_updates_every_pending_shard_and_leaves_ended_ones() -> None:
    old, new = resource(priority=1), resource(priority=-3)
    shards = [
        attempt(old, 1, shard=0, state=JobState.SUCCEEDED),
        attempt(old, 1, shard=1, state=JobState.PENDING),
    ]
    lv = live(job(shards[0], state=JobState.SUCCEEDED), job(shards[1], state=JobState.PENDING))
    action = only(plan(desired(new), state(record(old, *shards)), lv))
    assert action.kind is ActionKind.UPDATE
    assert action.detail == "priority 1 -> -3, in place, no new job"
    assert action.job_names == (shards[1].job_name,)


def test_plan_changes_only_the_state_when_the_job_has_ended() -> None:
    old, new = resource(priority=2), resource(priority=7)
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    rec = record(old, att, results=results(old))
    action = only(plan(desired(new), state(rec), live(job(att, state=JobState.SUCCEEDED))))
    assert (action.kind, action.reason) == (ActionKind.UPDATE, Reason.PRIORITY_CHANGED)
    assert action.detail == "priority 2 -> 7, state only: its job has ended"
    assert action.job_names == ()


def test_an_unchanged_priority_only_refreshes() -> None:
    res = resource(priority=5)
    att = attempt(res, 1, state=JobState.RUNNING)
    action = only(plan(desired(res), state(record(res, att)), live(job(att))))
    assert action.kind is ActionKind.REFRESH


def test_refresh_only_plan_does_not_change_the_priority() -> None:
    old, new = resource(), resource(priority=5)
    att = attempt(old, 1, state=JobState.RUNNING)
    action = only(plan(desired(new), state(record(old, att)), live(job(att)), refresh_only=True))
    assert action.kind is ActionKind.REFRESH


def test_a_replacing_change_with_a_new_priority_still_replaces() -> None:
    old, new = resource(content="v1"), resource(content="v2", priority=5)
    att = attempt(old, 1, state=JobState.RUNNING)
    action = only(plan(desired(new), state(record(old, att)), live(job(att))))
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.SOURCE_CHANGED)


# -- records written while priority was hashed as `config.priority` ---------------------------


def legacy_state(priority: int, job_state: JobState) -> tuple[State, Live]:
    """What an earlier release recorded for `config: {priority: N}`: the priority among the
    replacing fields and in the spec hash (and so in the job's tag)."""
    base = resource()
    replacing = base.replacing_fields()
    replacing["config"] = {"priority": priority}
    legacy_hash = hashlib.sha256(json.dumps(replacing, sort_keys=True).encode()).hexdigest()
    att = attempt(base, 1, state=job_state, spec_hash=legacy_hash)
    rec = record(base, att).model_copy(
        update={
            "spec_hash": legacy_hash,
            "replacing": replacing,
            "in_place": base.in_place_fields(),
        }
    )
    return state(rec), live(job(att, state=job_state))


def test_a_job_recorded_with_its_priority_in_the_hash_is_not_replaced() -> None:
    s, lv = legacy_state(5, JobState.RUNNING)
    action = only(plan(desired(resource(priority=5)), s, lv))
    assert action.kind is ActionKind.REFRESH
    assert action.diff == ()


def test_a_new_priority_on_a_job_recorded_with_the_old_hash_is_an_update_in_place() -> None:
    s, lv = legacy_state(5, JobState.PENDING)
    action = only(plan(desired(resource(priority=9)), s, lv))
    assert (action.kind, action.reason) == (ActionKind.UPDATE, Reason.PRIORITY_CHANGED)
    assert action.detail == "priority 5 -> 9, in place, no new job"


def test_a_replacing_change_on_a_record_with_the_old_hash_still_replaces() -> None:
    s, lv = legacy_state(5, JobState.RUNNING)
    action = only(plan(desired(resource(priority=5, model="gemini-2.5-pro")), s, lv))
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.MODEL_CHANGED)
