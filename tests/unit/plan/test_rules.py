"""plan/rules.py: each rule answers only for its own DESIGN §5 row, and the ladder's order."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.config import Guardrails, ModelPrice, ProjectConfig
from reconciler.live.snapshot import LiveJob
from reconciler.manifests.desired import DesiredResource
from reconciler.plan import (
    ActionKind,
    Reason,
    default_price_table,
    make_plan,
    plan_now,
    rules,
    settled_rules,
)
from reconciler.plan.situation import Context, Situation, situation, tag_index
from reconciler.state.document import JobAttempt, JobState, ResourceRecord
from tests.unit.plan.factories import (
    T0,
    attempt,
    desired,
    job,
    live,
    record,
    resource,
    results,
    state,
)

SHARDS = {"max_requests": 4}


def facts(
    res: DesiredResource | None,
    rec: ResourceRecord | None,
    *jobs: LiveJob,
    previous: Mapping[str, Mapping[str, str]] | None = None,
    force: bool = False,
) -> Situation:
    """The situation of one resource against `jobs`, as make_plan would gather it."""
    lv = live(*jobs)
    name = res.name if res is not None else rec.name if rec is not None else ""
    st = state(*([rec] if rec is not None else []))
    ctx = Context(
        live=lv,
        tagged=tag_index(lv, st),
        previous_key_digests=previous or {},
        prices=default_price_table(),
        force_replace=frozenset({name} if force else ()),
        tombstones=st.tombstones,
    )
    return situation(ctx, name, res, rec)


def sharded_attempts(res: DesiredResource, *states: JobState) -> list[JobAttempt]:
    return [
        attempt(res, 1, shard=i, state=s, request_count=4 if i < 2 else 2)
        for i, s in enumerate(states)
    ]


# -- one rule, one row ----------------------------------------------------------------------


def test_rule_in_flight_refreshes_running_job() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.PENDING)
    action = rules.refresh_in_flight(facts(res, record(res, att), job(att, state=JobState.RUNNING)))
    assert action is not None
    assert (action.kind, action.job_names, action.attempt) == (
        ActionKind.REFRESH,
        (att.job_name,),
        1,
    )
    # Live wins over the state: the job moved on since the last apply recorded it.
    assert action.detail == "attempt 1 is RUNNING"


def test_rule_in_flight_passes_when_every_job_ended() -> None:
    res = resource()
    att = attempt(res, 1)
    done = job(att, state=JobState.SUCCEEDED)
    assert rules.refresh_in_flight(facts(res, record(res, att), done)) is None


def test_rule_changed_spec_replaces_and_cancels_the_running_job() -> None:
    old, new = resource(content="v1"), resource(content="v2")
    att = attempt(old, 1)
    action = rules.replace_changed_spec(facts(new, record(old, att), job(att)))
    assert action is not None
    assert (action.kind, action.reason, action.cancel_first) == (
        ActionKind.REPLACE,
        Reason.SOURCE_CHANGED,
        True,
    )
    assert (action.job_names, action.next_attempt) == ((att.job_name,), 2)


def test_rule_changed_spec_passes_when_the_spec_is_applied() -> None:
    res = resource()
    att = attempt(res, 1)
    assert rules.replace_changed_spec(facts(res, record(res, att), job(att))) is None


def test_rule_ended_badly_resubmits_when_policy_allows() -> None:
    res = resource(policy={"resubmit": ["FAILED"], "max_attempts": 3})
    att = attempt(res, 1, state=JobState.FAILED)
    action = settled_rules.resubmit_ended_badly(
        facts(res, record(res, att), job(att, state=JobState.FAILED))
    )
    assert action is not None
    assert (action.kind, action.reason, action.next_attempt) == (
        ActionKind.RESUBMIT,
        Reason.JOB_FAILED,
        2,
    )
    assert action.requests == res.source.request_count and action.shards_to_create == ()


def test_rule_ended_badly_reports_when_policy_says_no() -> None:
    res = resource(policy={"resubmit": []})
    att = attempt(res, 1, state=JobState.FAILED)
    s = facts(res, record(res, att), job(att, state=JobState.FAILED))
    assert settled_rules.resubmit_ended_badly(s) is None
    action = settled_rules.report_bad_end(s)
    assert action is not None
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.POLICY_SAYS_NO)


def test_rule_failed_shards_resubmits_only_those_shards() -> None:
    res = resource(requests=10, size=10_000, shards=SHARDS, policy={"resubmit": ["FAILED"]})
    atts = sharded_attempts(res, JobState.SUCCEEDED, JobState.FAILED, JobState.RUNNING)
    s = facts(res, record(res, *atts), *(job(a, state=a.state) for a in atts))
    action = rules.resubmit_failed_shards(s)
    assert action is not None
    assert (action.kind, action.shards_to_create, action.next_attempt, action.requests) == (
        ActionKind.RESUBMIT,
        (1,),
        1,
        4,
    )
    assert action.shards_given_up == ()


def test_rule_surviving_shards_are_collected_and_the_given_up_one_named() -> None:
    res = resource(requests=10, size=10_000, shards=SHARDS, policy={"resubmit": []})
    atts = sharded_attempts(res, JobState.SUCCEEDED, JobState.EXPIRED, JobState.SUCCEEDED)
    s = facts(res, record(res, *atts), *(job(a, state=a.state) for a in atts))
    action = settled_rules.collect_surviving_shards(s)
    assert action is not None
    assert (action.kind, action.reason, action.shards_given_up) == (
        ActionKind.COLLECT,
        Reason.JOB_EXPIRED,
        (1,),
    )
    # A collect runs nothing: it carries no workload and no shards to create.
    assert (action.shards_to_create, action.jobs, action.requests) == ((), 0, 0)


def test_rule_succeeded_collects_results_not_yet_saved() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    action = settled_rules.collect_succeeded(
        facts(res, record(res, att), job(att, state=att.state))
    )
    assert action is not None
    assert (action.kind, action.reason) == (ActionKind.COLLECT, Reason.JOB_SUCCEEDED)
    assert action.detail == f"download the results of attempt 1 to {res.manifest.spec.output}"


def test_rule_succeeded_and_collected_is_a_noop() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    s = facts(res, record(res, att, results=results(res)), job(att, state=att.state))
    assert settled_rules.collect_succeeded(s) is None
    action = settled_rules.settle_collected(s)
    assert action is not None
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.UP_TO_DATE)


def test_rule_gone_job_is_recreated_as_a_new_attempt() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    action = settled_rules.recreate_gone_job(facts(res, record(res, att)))
    assert action is not None
    assert (action.kind, action.reason, action.next_attempt) == (
        ActionKind.RECREATE,
        Reason.JOB_GONE,
        2,
    )


def test_rule_gone_job_with_results_saved_is_not_drift() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    s = facts(res, record(res, att, results=results(res)))
    assert settled_rules.recreate_gone_job(s) is None
    action = settled_rules.settle_collected(s)
    assert action is not None and action.reason is Reason.RESULTS_COLLECTED


def test_rule_absent_resource_cancels_its_running_job() -> None:
    res = resource()
    att = attempt(res, 1)
    s = facts(None, record(res, att), job(att))
    action = rules.cancel_not_desired(s)
    assert action is not None
    assert (action.kind, action.job_names) == (ActionKind.CANCEL, (att.job_name,))


def test_rule_absent_resource_with_nothing_running_is_forgotten() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    s = facts(None, record(res, att, results=results(res)), job(att, state=att.state))
    assert rules.cancel_not_desired(s) is None
    action = rules.forget_not_desired(s)
    assert action is not None
    assert action.detail == f"drop the record; results stay at {res.manifest.spec.output}"


def test_rule_tagged_job_is_adopted_for_a_resource_the_state_never_saw() -> None:
    res = resource()
    action = rules.adopt_tagged_job(facts(res, None, job(res, name="batches/x", number=1)))
    assert action is not None
    assert (action.kind, action.job_names, action.attempt) == (
        ActionKind.ADOPT,
        ("batches/x",),
        1,
    )


def test_rule_new_resource_is_created_only_without_a_record() -> None:
    res = resource()
    action = rules.create_new(facts(res, None))
    assert action is not None and (action.kind, action.next_attempt) == (ActionKind.CREATE, 1)
    assert rules.create_new(facts(res, record(res))) is None


def test_rule_lost_intent_is_created_again_under_its_number() -> None:
    res = resource()
    intent = attempt(res, 2, job_name=None)
    action = rules.create_lost_intent(facts(res, record(res, intent)))
    assert action is not None
    assert (action.kind, action.reason, action.next_attempt) == (
        ActionKind.CREATE,
        Reason.PREVIOUS_CREATE_LOST,
        2,
    )


def test_rule_intent_with_a_live_job_is_adopted() -> None:
    res = resource()
    intent = attempt(res, 1, job_name=None)
    live_job = job(intent, name="batches/found")
    action = rules.adopt_recorded_intent(facts(res, record(res, intent), live_job))
    assert action is not None and action.job_names == ("batches/found",)
    # The same intent with its job found is not lost.
    assert rules.create_lost_intent(facts(res, record(res, intent), live_job)) is None


# -- the ladder -----------------------------------------------------------------------------


def test_ladder_tries_the_spec_change_before_the_running_job() -> None:
    """A running job of an old spec is replaced, not refreshed: order is part of the meaning."""
    old, new = resource(content="v1"), resource(content="v2")
    att = attempt(old, 1)
    s = facts(new, record(old, att), job(att))
    assert rules.refresh_in_flight(s) is not None
    action = rules.decide(s)
    assert action is not None and action.kind is ActionKind.REPLACE


def test_ladder_in_refresh_only_passes_over_the_replace_to_the_refresh() -> None:
    old, new = resource(content="v1"), resource(content="v2")
    att = attempt(old, 1)
    action = rules.decide(facts(new, record(old, att), job(att)), rules.REFRESH_ONLY_KINDS)
    assert action is not None and action.kind is ActionKind.REFRESH


def test_ladder_names_every_rule_once() -> None:
    names = [rule.__name__ for rule in rules.LADDER]
    assert len(names) == len(set(names))
    assert names[-1] == "settle_collected"


# -- refresh-only reuses the ladder ---------------------------------------------------------


def test_refresh_only_adopts_an_untracked_job_of_a_recorded_resource() -> None:
    """Same rule as a normal plan: a newer tagged job the state does not know is adopted."""
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    stray = job(res, name="batches/after-crash", number=2)
    p = make_plan(
        desired(res),
        state(record(res, att, results=results(res))),
        live(job(att, state=att.state), stray),
        created_at=T0,
        refresh_only=True,
    )
    assert [(a.kind, a.job_names, a.attempt) for a in p.actions] == [
        (ActionKind.ADOPT, ("batches/after-crash",), 2)
    ]


def test_refresh_only_collects_surviving_shards_of_a_given_up_attempt() -> None:
    res = resource(requests=10, size=10_000, shards=SHARDS, policy={"resubmit": []})
    atts = sharded_attempts(res, JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED)
    p = make_plan(
        desired(res),
        state(record(res, *atts)),
        live(*(job(a, state=a.state) for a in atts)),
        created_at=T0,
        refresh_only=True,
    )
    assert [(a.kind, a.shards_given_up, a.diff) for a in p.actions] == [
        (ActionKind.COLLECT, (1,), ())
    ]


def test_refresh_only_shows_no_spec_diff() -> None:
    old, new = resource(content="v1"), resource(content="v2")
    att = attempt(old, 1)
    p = make_plan(
        desired(new),
        state(record(old, att)),
        live(job(att)),
        created_at=T0,
        refresh_only=True,
    )
    assert [(a.kind, a.diff) for a in p.actions] == [(ActionKind.REFRESH, ())]


# -- plan_now -------------------------------------------------------------------------------


def test_plan_now_prices_with_the_project_overrides_and_checks_its_guardrails() -> None:
    res = resource(requests=10, size=4_000_000)
    config = ProjectConfig(
        prices={"gemini-2.5-flash": ModelPrice(input_per_million=2)},
        guardrails=Guardrails(max_estimated_cost_usd=0.0001),
    )
    p = plan_now(config, desired(res), state(), live(), now=T0)
    (action,) = p.actions
    # 1,000,000 estimated tokens at half of $2 per million (the batch discount).
    assert action.estimated_cost_usd == 1.0
    assert p.created_at == T0
    assert [v.guardrail.value for v in p.violations] == ["max_estimated_cost_usd"]
