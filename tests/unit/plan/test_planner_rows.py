"""Every row of DESIGN §5, one behaviour per test, from plain values."""

from __future__ import annotations

import pytest

from reconciler.errors import PlanError
from reconciler.plan import ActionKind, Reason
from reconciler.plan.actions import DiffChange
from reconciler.state.document import AttemptPurpose, JobState
from tests.unit.plan.factories import (
    T0,
    attempt,
    desired,
    job,
    key_digests,
    live,
    only,
    plan,
    record,
    resource,
    results,
    state,
)

# --- present / absent / no matching job: create ----------------------------------------------


def test_plan_creates_job_for_new_resource() -> None:
    res = resource(requests=10, size=4_000)
    action = only(plan(desired(res), state()))
    assert (action.kind, action.reason) == (ActionKind.CREATE, Reason.NEW_RESOURCE)
    assert action.next_attempt == 1
    assert action.purpose is AttemptPurpose.FULL
    assert (action.requests, action.bytes, action.jobs) == (10, 4_000, 1)
    assert action.estimated_input_tokens == 1_000
    assert action.estimated_cost_usd == pytest.approx(1_000 / 1e6 * 0.30 * 0.5)
    assert {e.path for e in action.diff} >= {"model", "source.sha256", "output"}
    assert all(e.change is DiffChange.ADDED for e in action.diff)


def test_plan_creates_when_only_jobs_of_an_older_spec_carry_the_tag() -> None:
    old = resource(content="v1")
    new = resource(content="v2")
    action = only(plan(desired(new), state(), live(job(old, state=JobState.SUCCEEDED))))
    assert action.kind is ActionKind.CREATE


def test_plan_splits_large_input_into_shards() -> None:
    res = resource(requests=250, size=10_000, shards={"max_requests": 100})
    assert only(plan(desired(res), state())).jobs == 3


# --- present / absent / tagged job: adopt ----------------------------------------------------


def test_plan_adopts_tagged_job_after_crash() -> None:
    res = resource()
    action = only(plan(desired(res), state(), live(job(res, number=2, name="batches/x"))))
    assert (action.kind, action.reason) == (ActionKind.ADOPT, Reason.TAGGED_JOB_FOUND)
    assert action.job_names == ("batches/x",)
    assert action.attempt == 2


def test_plan_adopts_job_of_an_intent_whose_create_reached_the_service() -> None:
    res = resource()
    intent = attempt(res, 1, job_name=None)
    action = only(
        plan(desired(res), state(record(res, intent)), live(job(intent, name="batches/late")))
    )
    assert (action.kind, action.reason) == (ActionKind.ADOPT, Reason.TAGGED_JOB_FOUND)
    assert action.job_name == "batches/late"


def test_plan_creates_again_when_previous_create_did_not_reach_the_service() -> None:
    res = resource()
    intent = attempt(res, 2, job_name=None)
    action = only(plan(desired(res), state(record(res, intent))))
    assert (action.kind, action.reason) == (ActionKind.CREATE, Reason.PREVIOUS_CREATE_LOST)
    assert Reason.PREVIOUS_CREATE_LOST.text == "the previous create did not reach the service"
    assert action.next_attempt == 2
    assert action.requests == res.source.request_count


def test_plan_creates_when_record_has_no_job() -> None:
    res = resource()
    action = only(plan(desired(res), state(record(res))))
    assert (action.kind, action.reason) == (ActionKind.CREATE, Reason.NO_JOB_RECORDED)


# --- same hash / running: refresh; terminal: collect; collected: no-op -----------------------


@pytest.mark.parametrize("live_state", [JobState.PENDING, JobState.RUNNING])
def test_plan_refreshes_job_in_progress(live_state: JobState) -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.PENDING)
    action = only(plan(desired(res), state(record(res, att)), live(job(att, state=live_state))))
    assert (action.kind, action.reason) == (ActionKind.REFRESH, Reason.JOB_IN_PROGRESS)
    assert action.job_names == (att.job_name,)
    assert not action.kind.is_change


def test_plan_collects_results_of_succeeded_job() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.RUNNING)
    action = only(
        plan(desired(res), state(record(res, att)), live(job(att, state=JobState.SUCCEEDED)))
    )
    assert (action.kind, action.reason) == (ActionKind.COLLECT, Reason.JOB_SUCCEEDED)
    assert action.job_names == (att.job_name,)
    assert action.attempt == 1


def test_plan_is_noop_when_results_are_collected() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    p = plan(
        desired(res),
        state(record(res, att, results=results(res))),
        live(job(att, state=JobState.SUCCEEDED)),
    )
    assert (only(p).kind, only(p).reason) == (ActionKind.NOOP, Reason.UP_TO_DATE)
    assert not p.has_changes


def test_plan_is_noop_when_job_is_gone_after_results_were_collected() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    action = only(plan(desired(res), state(record(res, att, results=results(res)))))
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.RESULTS_COLLECTED)


# --- replacing change: replace -----------------------------------------------------------------


def test_plan_replaces_job_when_input_changes() -> None:
    old = resource(content="v1", requests=10)
    new = resource(content="v2", requests=10)
    att = attempt(old, 1, state=JobState.RUNNING)
    p = plan(
        desired(new),
        state(record(old, att)),
        live(job(att)),
        previous_key_digests={"eval-summaries": key_digests(10, "v1")},
    )
    action = only(p)
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.SOURCE_CHANGED)
    assert action.cancel_first and action.job_names == (att.job_name,)
    assert action.next_attempt == 2
    sha_entry = next(e for e in action.diff if e.path == "source.sha256")
    assert sha_entry.forces_replacement and sha_entry.change is DiffChange.CHANGED
    assert (sha_entry.old, sha_entry.new) == (old.source.sha256, new.source.sha256)
    assert action.request_changes is not None
    assert action.request_changes.changed == 10
    # The old results are not there yet, so the whole input runs again.
    assert action.purpose is AttemptPurpose.FULL and action.requests == 10


def test_plan_replace_of_settled_job_only_creates() -> None:
    old = resource(model="gemini-2.5-flash")
    new = resource(model="gemini-2.5-pro")
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(new),
            state(record(old, att, results=results(old))),
            live(job(att, state=JobState.SUCCEEDED)),
        )
    )
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.MODEL_CHANGED)
    assert not action.cancel_first and action.job_names == ()
    assert action.model == "gemini-2.5-pro"


def test_plan_replaces_unchanged_resource_when_asked() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(res),
            state(record(res, att, results=results(res))),
            force_replace=["eval-summaries"],
        )
    )
    assert (action.kind, action.reason) == (ActionKind.REPLACE, Reason.REPLACE_REQUESTED)
    assert action.kind.is_replace


def test_plan_refuses_replace_of_unknown_resource() -> None:
    with pytest.raises(PlanError, match="--replace"):
        plan(desired(resource()), state(), force_replace=["nope"])


def test_plan_reruns_only_changed_requests_when_rerun_is_changed() -> None:
    old_keys = key_digests(100, "v1")
    new_keys = {**old_keys, "key-000": "changed", "key-new": "fresh"}
    del new_keys["key-099"]
    old = resource(keys=old_keys, content="v1", size=10_000)
    new = resource(keys=new_keys, content="v2", size=10_000)
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(new),
            state(record(old, att, results=results(old))),
            previous_key_digests={"eval-summaries": old_keys},
        )
    )
    assert action.kind is ActionKind.REPLACE
    assert action.purpose is AttemptPurpose.INCREMENTAL
    changes = action.request_changes
    assert changes is not None
    assert (changes.added, changes.removed, changes.changed, changes.unchanged) == (1, 1, 1, 98)
    assert changes.added_keys == ("key-new",) and changes.removed_keys == ("key-099",)
    assert (action.requests, action.reused_requests) == (2, 98)
    assert action.bytes == 10_000 * 2 // 100


def test_plan_reruns_everything_when_rerun_is_all() -> None:
    old_keys = key_digests(100, "v1")
    new_keys = {**old_keys, "key-000": "changed"}
    old = resource(keys=old_keys, content="v1", policy={"rerun": "all"})
    new = resource(keys=new_keys, content="v2", policy={"rerun": "all"})
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(new),
            state(record(old, att, results=results(old))),
            previous_key_digests={"eval-summaries": old_keys},
        )
    )
    assert action.purpose is AttemptPurpose.FULL and action.requests == 100


def test_plan_reruns_everything_when_model_changed_with_source() -> None:
    old_keys = key_digests(10, "v1")
    old = resource(keys=old_keys, content="v1")
    new = resource(keys={**old_keys, "key-000": "x"}, content="v2", model="gemini-2.5-pro")
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(new),
            state(record(old, att, results=results(old))),
            previous_key_digests={"eval-summaries": old_keys},
        )
    )
    assert action.reason is Reason.MODEL_CHANGED and action.purpose is AttemptPurpose.FULL


def test_plan_updates_when_source_changed_but_no_request_needs_a_run() -> None:
    old_keys = key_digests(10, "v1")
    new_keys = dict(list(old_keys.items())[:9])
    old = resource(keys=old_keys, content="v1")
    new = resource(keys=new_keys, content="v2")
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(new),
            state(record(old, att, results=results(old))),
            previous_key_digests={"eval-summaries": old_keys},
        )
    )
    assert (action.kind, action.reason) == (ActionKind.UPDATE, Reason.NO_REQUESTS_TO_RUN)
    assert action.requests == 0


# --- in-place change: update ---------------------------------------------------------------


def test_plan_updates_in_place_when_output_moves() -> None:
    old = resource(output="results/a.jsonl")
    new = resource(output="results/b.jsonl")
    assert old.spec_hash == new.spec_hash
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(plan(desired(new), state(record(old, att, results=results(old)))))
    assert (action.kind, action.reason) == (ActionKind.UPDATE, Reason.OUTPUT_MOVED)
    assert [(e.path, e.old, e.new, e.forces_replacement) for e in action.diff] == [
        ("output", "results/a.jsonl", "results/b.jsonl", False)
    ]
    assert action.jobs == 0 and action.estimated_cost_usd is None


def test_plan_updates_in_place_when_labels_change() -> None:
    old = resource(labels={"team": "a"})
    new = resource(labels={"team": "b", "owner": "x"})
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    action = only(plan(desired(new), state(record(old, att, results=results(old)))))
    assert (action.kind, action.reason) == (ActionKind.UPDATE, Reason.LABELS_CHANGED)
    assert {e.path: e.change for e in action.diff} == {
        "labels.owner": DiffChange.ADDED,
        "labels.team": DiffChange.CHANGED,
    }


def test_plan_shows_no_diff_for_records_without_field_copies() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    rec = record(res, att, results=results(res), fields=False)
    assert only(plan(desired(res), state(rec))).kind is ActionKind.NOOP


# --- failed/expired/cancelled: resubmit per policy, else report ------------------------------


def test_plan_resubmits_failed_job_when_policy_allows() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.RUNNING)
    action = only(
        plan(desired(res), state(record(res, att)), live(job(att, state=JobState.FAILED)))
    )
    assert (action.kind, action.reason) == (ActionKind.RESUBMIT, Reason.JOB_FAILED)
    assert (action.attempt, action.next_attempt) == (1, 2)
    assert action.requests == res.source.request_count


def test_plan_resubmits_expired_job_even_when_service_deleted_it() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.EXPIRED)
    action = only(plan(desired(res), state(record(res, att))))
    assert (action.kind, action.reason) == (ActionKind.RESUBMIT, Reason.JOB_EXPIRED)


def test_plan_reports_when_attempts_are_exhausted() -> None:
    res = resource(policy={"max_attempts": 2})
    atts = [attempt(res, n, state=JobState.FAILED) for n in (1, 2)]
    p = plan(
        desired(res),
        state(record(res, *atts)),
        live(*(job(a, state=JobState.FAILED) for a in atts)),
    )
    action = only(p)
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.ATTEMPTS_EXHAUSTED)
    assert action.reason.is_report


def test_plan_records_end_state_when_policy_does_not_resubmit_it() -> None:
    res = resource()  # default policy resubmits FAILED and EXPIRED, not CANCELLED
    att = attempt(res, 1, state=JobState.RUNNING)
    action = only(
        plan(desired(res), state(record(res, att)), live(job(att, state=JobState.CANCELLED)))
    )
    assert (action.kind, action.reason) == (ActionKind.COLLECT, Reason.JOB_CANCELLED)
    assert "policy.resubmit" in action.detail


def test_plan_reports_policy_says_no_once_end_state_is_recorded() -> None:
    res = resource(policy={"resubmit": []})
    att = attempt(res, 1, state=JobState.FAILED)
    action = only(
        plan(desired(res), state(record(res, att)), live(job(att, state=JobState.FAILED)))
    )
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.POLICY_SAYS_NO)


def test_plan_retries_failed_requests_when_policy_allows() -> None:
    res = resource(policy={"retry_failed_requests": 1}, requests=100, size=10_000)
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    action = only(plan(desired(res), state(record(res, att, results=results(res, failed=5)))))
    assert (action.kind, action.reason) == (ActionKind.RESUBMIT, Reason.FAILED_REQUESTS)
    assert action.purpose is AttemptPurpose.RETRY_FAILED
    assert (action.requests, action.bytes) == (5, 500)


def test_plan_stops_retrying_failed_requests_after_policy_count() -> None:
    res = resource(policy={"retry_failed_requests": 1})
    first = attempt(res, 1, state=JobState.SUCCEEDED)
    retry = attempt(res, 2, state=JobState.SUCCEEDED, purpose=AttemptPurpose.RETRY_FAILED)
    rec = record(res, first, retry, results=results(res, failed=2, attempts=(1, 2)))
    action = only(plan(desired(res), state(rec)))
    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.RESULTS_COLLECTED)
    assert "2 request(s) failed" in action.detail


# --- job recorded, gone at the service: recreate unless collected ----------------------------


def test_plan_recreates_job_gone_before_its_results_were_collected() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.RUNNING)
    action = only(plan(desired(res), state(record(res, att)), live()))
    assert (action.kind, action.reason) == (ActionKind.RECREATE, Reason.JOB_GONE)
    assert action.next_attempt == 2 and action.requests == res.source.request_count


def test_plan_decides_gone_only_from_the_listed_jobs() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.RUNNING)
    other = job(res, name="batches/someone-else", number=9)
    action = only(plan(desired(res), state(record(res, att)), live(other)))
    # A tagged job with a higher attempt is adopted rather than paying for a new one.
    assert action.kind is ActionKind.ADOPT and action.job_names == ("batches/someone-else",)


# --- absent: cancel, forget -------------------------------------------------------------------


def test_plan_cancels_running_job_of_removed_manifest() -> None:
    res = resource()
    att = attempt(res, 1)
    action = only(plan(desired(), state(record(res, att)), live(job(att))))
    assert (action.kind, action.reason) == (ActionKind.CANCEL, Reason.NOT_DESIRED)
    assert action.job_names == (att.job_name,)


def test_plan_cancels_job_of_removed_manifest_found_by_intent_tag() -> None:
    res = resource()
    intent = attempt(res, 1, job_name=None)
    action = only(plan(desired(), state(record(res, intent)), live(job(intent, name="batches/q"))))
    assert action.kind is ActionKind.CANCEL and action.job_names == ("batches/q",)


def test_plan_forgets_settled_resource_of_removed_manifest() -> None:
    res = resource()
    att = attempt(res, 1, state=JobState.SUCCEEDED)
    action = only(
        plan(
            desired(),
            state(record(res, att, results=results(res))),
            live(job(att, state=JobState.SUCCEEDED)),
        )
    )
    assert (action.kind, action.reason) == (ActionKind.FORGET, Reason.NOT_DESIRED)
    assert "results/eval-summaries.jsonl" in action.detail


# --- flags, scope, metadata -------------------------------------------------------------------


def test_plan_restricts_to_targets() -> None:
    a, b = resource("a"), resource("b")
    p = plan(desired(a, b), state(), targets=["b"])
    assert [x.resource for x in p.actions] == ["b"] and p.targets == ("b",)


def test_plan_refuses_unknown_target() -> None:
    with pytest.raises(PlanError, match="--target"):
        plan(desired(resource("a")), state(), targets=["zz"])


def test_refresh_only_plan_never_creates_replaces_or_cancels() -> None:
    new = resource("new")
    changed_old, changed_new = resource("changed", content="v1"), resource("changed", content="v2")
    running = attempt(changed_old, 1)
    gone = resource("gone")
    gone_att = attempt(gone, 1, state=JobState.RUNNING)
    done = resource("done")
    done_att = attempt(done, 1, state=JobState.RUNNING)
    p = plan(
        desired(new, changed_new, done),
        state(record(changed_old, running), record(gone, gone_att), record(done, done_att)),
        live(job(running), job(gone_att), job(done_att, state=JobState.SUCCEEDED)),
        refresh_only=True,
    )
    kinds = {a.resource: a.kind for a in p.actions}
    assert kinds == {
        "changed": ActionKind.REFRESH,
        "done": ActionKind.COLLECT,
        "gone": ActionKind.REFRESH,
    }
    assert p.refresh_only


def test_plan_records_what_it_was_made_against_and_sorts_actions() -> None:
    d = desired(resource("zeta"), resource("alpha"))
    p = plan(d, state(serial=41))
    assert [a.resource for a in p.actions] == ["alpha", "zeta"]
    assert (p.state_serial, p.manifests_sha256, p.created_at) == (41, d.manifests_sha256, T0)
    assert p.summary.counts[ActionKind.CREATE] == 2 and p.has_changes


def test_refresh_only_plan_adopts_tagged_jobs_and_skips_new_resources() -> None:
    crashed, fresh = resource("crashed"), resource("fresh")
    p = plan(
        desired(crashed, fresh),
        state(),
        live(job(crashed, name="batches/c")),
        refresh_only=True,
    )
    assert [(a.resource, a.kind) for a in p.actions] == [("crashed", ActionKind.ADOPT)]
