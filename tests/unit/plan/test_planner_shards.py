"""Sharded attempts: a shard that fails, goes missing or never reached the service runs alone."""

from __future__ import annotations

from reconciler.live.tags import IdentityTag, parse_tag
from reconciler.manifests.desired import DesiredResource
from reconciler.plan import ActionKind, Reason
from reconciler.state.document import AttemptPurpose, JobAttempt, JobState
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

SHARDS = {"max_requests": 4}


def sharded(policy: dict[str, object] | None = None) -> DesiredResource:
    """Ten requests over shards of at most four: 4 + 4 + 2."""
    return resource(requests=10, size=10_000, shards=SHARDS, policy=policy)


def three_shards(res: DesiredResource, *states: JobState) -> list[JobAttempt]:
    counts = (4, 4, 2)
    return [
        attempt(res, 1, shard=i, state=s, request_count=counts[i]) for i, s in enumerate(states)
    ]


def test_tag_of_a_shard_run_again_carries_its_rerun() -> None:
    tag = IdentityTag("eval", "0123456789ab", 3, 2, 1)
    assert str(tag) == "[rc:eval@0123456789ab:3.s2r1]"
    assert parse_tag(f"my job {tag}") == tag
    assert parse_tag("x [rc:eval@0123456789ab:3.s2]") == IdentityTag("eval", "0123456789ab", 3, 2)


def test_failed_shard_is_resubmitted_alone_while_its_siblings_run() -> None:
    res = sharded()
    atts = three_shards(res, JobState.RUNNING, JobState.RUNNING, JobState.RUNNING)
    lv = live(
        job(atts[0], state=JobState.SUCCEEDED),
        job(atts[1], state=JobState.FAILED),
        job(atts[2], state=JobState.RUNNING),
    )
    action = only(plan(desired(res), state(record(res, *atts)), lv))
    assert (action.kind, action.reason) == (ActionKind.RESUBMIT, Reason.JOB_FAILED)
    assert action.shards_to_create == (1,)
    assert (action.attempt, action.next_attempt) == (1, 1)
    assert (action.jobs, action.requests, action.bytes) == (1, 4, 4_000)
    assert action.job_names == (atts[1].job_name,)
    assert "shard 1 of attempt 1 ended FAILED; run again alone (try 2 of at most 3)" in (
        action.detail
    )


def test_attempt_stands_on_the_newest_run_of_each_shard() -> None:
    res = sharded()
    atts = three_shards(res, JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED)
    again = attempt(res, 1, shard=1, rerun=1, state=JobState.RUNNING, request_count=4)
    rec = record(res, *atts, again)
    assert [a.job_name for a in rec.attempt_group(1)] == [
        atts[0].job_name,
        again.job_name,
        atts[2].job_name,
    ]
    running = live(*(job(a, state=a.state) for a in atts), job(again, state=JobState.RUNNING))
    action = only(plan(desired(res), state(rec), running))
    assert (action.kind, action.job_names) == (ActionKind.REFRESH, (again.job_name,))

    done = live(*(job(a, state=a.state) for a in atts), job(again, state=JobState.SUCCEEDED))
    action = only(plan(desired(res), state(rec), done))
    assert (action.kind, action.reason) == (ActionKind.COLLECT, Reason.JOB_SUCCEEDED)
    assert action.job_names == (atts[0].job_name, again.job_name, atts[2].job_name)


def test_each_rerun_of_a_shard_counts_against_max_attempts() -> None:
    res = sharded(policy={"max_attempts": 2})
    atts = three_shards(res, JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED)
    again = attempt(res, 1, shard=1, rerun=1, state=JobState.FAILED, request_count=4)
    rec = record(res, *atts, again)
    # Never the whole group again: the attempts of shard 1 are spent, and its siblings' jobs
    # are gone, so there is nothing to save either.
    action = only(plan(desired(res), state(rec)))
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.ATTEMPTS_EXHAUSTED)


def test_when_a_shard_is_given_up_its_siblings_results_are_still_collected() -> None:
    res = sharded(policy={"max_attempts": 2})
    atts = three_shards(res, JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED)
    again = attempt(res, 1, shard=1, rerun=1, state=JobState.FAILED, request_count=4)
    lv = live(*(job(a, state=a.state) for a in (*atts, again)))
    action = only(plan(desired(res), state(record(res, *atts, again)), lv))
    assert (action.kind, action.reason) == (ActionKind.COLLECT, Reason.JOB_FAILED)
    assert action.shards_given_up == (1,)
    assert "collect shards 0, 2 of attempt 1; the requests of shard 1 (FAILED)" in action.detail

    collected = record(res, *atts, again, results=results(res, failed=4, attempts=(1,)))
    action = only(plan(desired(res), state(collected), lv))
    assert action.kind is ActionKind.NOOP and "4 request(s) failed" in action.detail


def test_shard_whose_end_state_policy_does_not_resubmit_is_reported() -> None:
    res = sharded(policy={"resubmit": ["EXPIRED"]})
    atts = three_shards(res, JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED)
    action = only(plan(desired(res), state(record(res, *atts))))
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.POLICY_SAYS_NO)


def test_only_the_shard_whose_create_was_lost_is_created_again() -> None:
    res = sharded()
    atts = three_shards(res, JobState.RUNNING, JobState.RUNNING)
    lost = attempt(res, 1, shard=2, job_name=None, request_count=2)
    lv = live(*(job(a, state=JobState.RUNNING) for a in atts))
    action = only(plan(desired(res), state(record(res, *atts, lost)), lv))
    assert (action.kind, action.reason) == (ActionKind.CREATE, Reason.PREVIOUS_CREATE_LOST)
    assert (action.shards_to_create, action.next_attempt, action.jobs, action.requests) == (
        (2,),
        1,
        1,
        2,
    )


def test_lost_shards_are_created_again_in_the_same_action_that_adopts_their_found_siblings() -> (
    None
):
    # A kill between the shards' creates: shard 0's job reached the service, 1 and 2 did not.
    # Adopting shard 0 alone would leave 1 and 2 for a later apply (a follow-up round of
    # `apply --wait` creates nothing the user did not approve), so one action does both.
    res = sharded()
    intents = [
        attempt(res, 1, shard=i, job_name=None, request_count=n) for i, n in enumerate((4, 4, 2))
    ]
    found = job(intents[0], name="batches/found-s0")
    action = only(plan(desired(res), state(record(res, *intents)), live(found)))
    assert (action.kind, action.reason) == (ActionKind.CREATE, Reason.PREVIOUS_CREATE_LOST)
    assert (action.shards_to_create, action.jobs, action.requests) == ((1, 2), 2, 6)
    assert action.job_names == ("batches/found-s0",)
    assert "shards 1, 2 of attempt 1 never reached the service; adopt batches/found-s0" in (
        action.detail
    )

    # Every intent's job found: adopt, and nothing to create.
    every = live(*(job(a, name=f"batches/found-s{a.shard}") for a in intents))
    action = only(plan(desired(res), state(record(res, *intents)), every))
    assert action.kind is ActionKind.ADOPT and len(action.job_names) == 3


def test_shard_gone_before_its_results_were_collected_runs_again_alone() -> None:
    res = sharded()
    atts = three_shards(res, JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.SUCCEEDED)
    lv = live(job(atts[0], state=JobState.SUCCEEDED), job(atts[2], state=JobState.SUCCEEDED))
    action = only(plan(desired(res), state(record(res, *atts)), lv))
    assert (action.kind, action.reason) == (ActionKind.RECREATE, Reason.JOB_GONE)
    assert (action.shards_to_create, action.next_attempt, action.requests) == ((1,), 1, 4)


def test_shard_rerun_keeps_the_purpose_of_its_attempt() -> None:
    res = sharded()
    atts = [
        attempt(res, 2, shard=i, state=s, purpose=AttemptPurpose.INCREMENTAL, request_count=3)
        for i, s in enumerate((JobState.SUCCEEDED, JobState.EXPIRED))
    ]
    action = only(plan(desired(res), state(record(res, *atts))))
    assert (action.kind, action.reason) == (ActionKind.RESUBMIT, Reason.JOB_EXPIRED)
    assert (action.purpose, action.shards_to_create, action.requests) == (
        AttemptPurpose.INCREMENTAL,
        (1,),
        3,
    )


def test_unsharded_failed_job_still_runs_as_a_new_attempt() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.FAILED)
    action = only(plan(desired(res), state(record(res, att))))
    assert (action.kind, action.shards_to_create, action.next_attempt) == (
        ActionKind.RESUBMIT,
        (),
        2,
    )


def test_source_over_the_files_api_limit_is_planned_as_shards_within_it() -> None:
    """One uploaded file holds at most 2 GB; `shards.max_bytes` (default 1GiB) splits more."""
    res = resource(requests=300_000, size=5 * 10**9)
    action = only(plan(desired(res), state()))
    assert (action.kind, action.jobs) == (ActionKind.CREATE, 5)
