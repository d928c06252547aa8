"""The planner's decision ladder: one small named rule per row of DESIGN §5, tried in order.

Each rule looks at one resource's `Situation` and returns an `Action` or None ("not my row").
`decide` tries `LADDER` top to bottom and takes the first action whose kind the caller allows,
as gitops-engine's sync tasks ask small named predicates in turn. Order is part of the meaning:
a rule may rely on the rules above it having passed (say, `recreate_gone_job` only runs once no
member ended badly), and each rule's docstring says which of those it relies on.

A normal plan allows every kind, and the ladder always ends in an action (`settle_collected`
catches whatever a desired and recorded resource reaches it with). A refresh-only plan runs the
*same* ladder allowing only `REFRESH_ONLY_KINDS`: a rule that would create, replace, cancel or
update is passed over and the ladder goes on, so refresh-only cannot drift from the real plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from reconciler.plan import builders
from reconciler.plan.actions import Action, ActionKind, Reason
from reconciler.plan.outcomes import (
    incremental,
    priority_change,
    replacement,
    retry_failed_requests,
    settled,
)
from reconciler.plan.settled_rules import (
    collect_succeeded,
    collect_surviving_shards,
    record_bad_end,
    recreate_gone_job,
    recreate_gone_shards,
    report_bad_end,
    report_gone_exhausted,
    restore_drifted_results,
    resubmit_ended_badly,
    settle_collected,
    settle_given_up_shards,
    update_after_bad_end,
    update_gone_exhausted,
)
from reconciler.plan.situation import (
    BAD_END,
    Situation,
    adoptable,
    live_names,
    overdue,
    shard_names,
)
from reconciler.plan.workload import attempt_workload, shard_subset_workload
from reconciler.state.document import AttemptPurpose

Rule = Callable[[Situation], Action | None]

# -- row: absent from the manifests -> cancel, then forget ------------------------------------


def cancel_not_desired(s: Situation) -> Action | None:
    """Absent, still running -> cancel every running job of the record, then forget."""
    if s.resource is not None or s.record is None:
        return None
    running = s.running_jobs
    return builders.cancel(s, running) if running else None


def forget_not_desired(s: Situation) -> Action | None:
    """Absent, settled -> forget the record (results stay). Relies on: nothing runs."""
    if s.resource is not None or s.record is None:
        return None
    return builders.forget(s)


# -- row: present, not (yet) recorded -> adopt the tagged job, else create ---------------------


def adopt_tagged_job(s: Situation) -> Action | None:
    """A live job carries the desired spec's identity tag and an attempt newer than the state
    knows -> adopt it (a crash happened between create and the state write)."""
    if s.resource is None:
        return None
    recorded = (
        {a.job_name for a in s.record.attempts if a.job_name is not None} if s.record else set()
    )
    found = adoptable(s.ctx, s.name, s.resource.spec_hash, recorded, s.number)
    if found is None:
        return None
    number, jobs = found
    return builders.adopt(s, number, jobs)


def create_new(s: Situation) -> Action | None:
    """Present, never recorded, no tagged job -> create attempt 1."""
    if s.resource is None or s.record is not None:
        return None
    work = attempt_workload(s.ctx.prices, s.resource, None, AttemptPurpose.FULL, None)
    return builders.create(s, Reason.NEW_RESOURCE, work, next_attempt=s.next_attempt)


# -- row: present, replacing change -> replace -------------------------------------------------


def skip_run_when_no_request_changed(s: Situation) -> Action | None:
    """The source changed but every remaining request already has a result (rerun: changed)
    -> update the results in place, or retry the failed ones policy still retries."""
    if s.resource is None or s.record is None or not s.spec_changed or not incremental(s):
        return None
    changes = s.request_changes()
    if changes is None or changes.to_run != 0:
        return None
    # Nothing new to run, but kept results may include failures the policy retries.
    retry = retry_failed_requests(s, changes)
    if retry is not None:
        return retry
    return builders.update(
        s,
        Reason.NO_REQUESTS_TO_RUN,
        detail=f"{changes.removed} removed request(s) are dropped from the results",
        changes=changes,
        reused=changes.unchanged,
    )


def replace_changed_spec(s: Situation) -> Action | None:
    """A replacing field changed, or `--replace` names it -> replace (batch jobs are immutable)."""
    if s.resource is None or s.record is None or not (s.spec_changed or s.forced):
        return None
    return replacement(s)


# -- row: present, the record took the desired spec without running it ------------------------


def replace_older_spec_still_running(s: Situation) -> Action | None:
    """An in-place UPDATE moved the record to the desired spec while a job of the older spec
    still runs -> replace, so no job of a spec nobody wants keeps running.
    Relies on: `replace_changed_spec` passed (the spec is applied, no `--replace`)."""
    if s.record is None or not s.behind or not s.running_jobs:
        return None
    return replacement(s)


def settle_results_of_unrun_spec(s: Situation) -> Action | None:
    """Nothing ran for the desired spec (no attempt, or an UPDATE needed no run) but results
    exist -> they stand for it: retry failed requests, update in place, or nothing.
    Relies on: the spec is applied and no job of an older one runs (the rules above)."""
    if s.resource is None or s.record is None or s.record.results is None:
        return None
    if s.members and not s.behind:
        return None
    return settled(s)


def create_unrecorded_job(s: Situation) -> Action | None:
    """Recorded without any job or results for the desired spec (an import, an UPDATE that
    needed no run, a state edited by hand) -> create the next attempt.
    Relies on: no results to settle and no older job running (the rules above)."""
    if s.resource is None or s.record is None or (s.members and not s.behind):
        return None
    work = attempt_workload(s.ctx.prices, s.resource, s.record, AttemptPurpose.FULL, None)
    return builders.create(s, Reason.NO_JOB_RECORDED, work, next_attempt=s.next_attempt)


# -- row: present, same spec, an intent or a lost create ---------------------------------------


def create_lost_intent(s: Situation) -> Action | None:
    """An intent of the current attempt never reached the service -> create it again under
    the same attempt number (no job carries its tag, so the number is still free); of a
    sharded attempt only the lost shards, since the others have jobs and would be paid twice.
    Sibling intents whose jobs did reach the service are adopted by the same action: were they
    adopted alone, the lost shards' create would wait for the next apply (a follow-up round
    never creates what the user did not approve), and `apply --wait` would end unconverged."""
    lost = [m for m in s.members if m.lost]
    if s.resource is None or not lost:
        return None
    adopting = live_names([m for m in s.members if m.attempt.is_intent])
    if s.sharded:
        work = shard_subset_workload(
            s.ctx.prices,
            s.resource,
            [m.attempt for m in s.members],
            [m.attempt for m in lost],
            s.purpose,
        )
        detail = f"{shard_names(lost)} of attempt {s.number} never reached the service"
        if adopting:
            detail += f"; adopt {', '.join(adopting)}, which did"
    else:
        changes = s.changes_for(s.purpose)
        work = attempt_workload(s.ctx.prices, s.resource, s.record, s.purpose, changes)
        detail = f"attempt {s.number} was recorded but never reached the service"
    return builders.create(
        s,
        Reason.PREVIOUS_CREATE_LOST,
        work,
        detail=detail,
        attempt=s.number,
        next_attempt=s.number,
        adopting=adopting,
    )


def adopt_recorded_intent(s: Situation) -> Action | None:
    """An intent of the current attempt has a live job carrying its tag (and none is lost)
    -> adopt it."""
    jobs = live_names([m for m in s.members if m.attempt.is_intent])
    if not jobs:
        return None
    return builders.adopt(s, s.number, jobs)


# -- row: present, same spec, ended badly -> resubmit (shards at once) ---------------------------


def resubmit_failed_shards(s: Situation) -> Action | None:
    """Shards of the current attempt ended badly and policy resubmits -> run them again alone,
    at once: their siblings' jobs (running or done) stay, and the attempt's results are merged
    from every shard's newest run."""
    bad = s.bad
    if s.resource is None or not bad or not s.sharded or s.refusal is not None:
        return None
    states = "/".join(sorted({m.state.value for m in bad}))
    work = shard_subset_workload(
        s.ctx.prices,
        s.resource,
        [m.attempt for m in s.members],
        [m.attempt for m in bad],
        s.purpose,
    )
    return builders.resubmit(
        s,
        BAD_END[bad[0].state],
        work,
        detail=f"{shard_names(bad)} of attempt {s.number} ended {states}; run again alone "
        f"(try {s.tries(bad) + 1} of at most {s.resource.manifest.spec.policy.max_attempts})",
        ended=live_names(bad),
        attempt=s.number,
        next_attempt=s.number,
    )


# -- row: present, same spec, in flight -> refresh ---------------------------------------------


def replace_stuck_jobs(s: Situation) -> Action | None:
    """A job of the current attempt waited past `policy.timeout` (PENDING past `pending`, or
    unfinished past `total`) -> cancel what runs and create a new attempt, on
    `policy.fallback_model` if set. Counts against `max_attempts`: once they are spent, the job
    is left to run (`refresh_in_flight` reports it). Time is `Live.observed_at`: no clock."""
    if s.resource is None or s.record is None:
        return None
    policy = s.resource.manifest.spec.policy
    if policy.timeout is None or s.attempts_used() >= policy.max_attempts:
        return None
    now = s.ctx.live.observed_at
    stuck = [(m, why) for m in s.members if (why := overdue(m, policy.timeout, now))]
    if not stuck:
        return None
    work = attempt_workload(s.ctx.prices, s.resource, s.record, AttemptPurpose.FULL, None)
    if policy.fallback_model:
        work = replace(work, model=policy.fallback_model)
    action = builders.replace(
        s,
        Reason.JOB_STUCK,
        work,
        running=s.running_jobs,
        changes=None,
        next_attempt=s.next_attempt,
    )
    on = f" on {policy.fallback_model}" if policy.fallback_model else ""
    return replace(action, detail=f"{stuck[0][1]}; {action.detail}{on}")


def update_priority_in_flight(s: Situation) -> Action | None:
    """The priority changed while jobs of the current attempt are pending or running -> set it
    on them through the service's update call: in place, no new job."""
    moving = [m for m in s.members if m.in_progress]
    change = priority_change(s)
    if s.resource is None or change is None or not moving:
        return None
    return builders.update(
        s,
        Reason.PRIORITY_CHANGED,
        detail=f"priority {change[0]} -> {change[1]}, in place, no new job",
        attempt=s.number,
        job_names=live_names(moving),
    )


def refresh_in_flight(s: Situation) -> Action | None:
    """A job of the current attempt is pending or running -> record its progress."""
    moving = [m for m in s.members if m.in_progress]
    if not moving:
        return None
    states = "/".join(sorted({m.state.value for m in moving}))
    return builders.refresh(s, live_names(moving), detail=f"attempt {s.number} is {states}")


LADDER: tuple[Rule, ...] = (
    # absent -> cancel, then forget
    cancel_not_desired,
    forget_not_desired,
    # present, not recorded (or a newer tagged job) -> adopt, else create
    adopt_tagged_job,
    create_new,
    # replacing change -> replace
    skip_run_when_no_request_changed,
    replace_changed_spec,
    replace_older_spec_still_running,
    # recorded without a run of the desired spec -> settle its results, else create
    settle_results_of_unrun_spec,
    create_unrecorded_job,
    # an intent: its job did not reach the service -> create again (adopting its siblings'
    # jobs); it did -> adopt
    create_lost_intent,
    adopt_recorded_intent,
    # shards ended badly -> resubmit them at once, even while their siblings run
    resubmit_failed_shards,
    # in flight: past policy.timeout -> replace; a new priority -> update in place; else refresh
    replace_stuck_jobs,
    update_priority_in_flight,
    refresh_in_flight,
    # collected, but the saved results drifted on disk -> download again, else report
    restore_drifted_results,
    # ended badly -> resubmit if policy says so, else collect what survived, record, report
    resubmit_ended_badly,
    settle_given_up_shards,
    collect_surviving_shards,
    record_bad_end,
    update_after_bad_end,
    report_bad_end,
    # job gone (404) before its results were saved -> recreate (drift), else report
    recreate_gone_shards,
    update_gone_exhausted,
    report_gone_exhausted,
    recreate_gone_job,
    # succeeded -> collect, then retry failed requests / update / no-op
    collect_succeeded,
    settle_collected,
)
"""The rules in the order they are tried; the first action of an allowed kind wins."""

REFRESH_ONLY_KINDS = frozenset({ActionKind.ADOPT, ActionKind.REFRESH, ActionKind.COLLECT})
"""What a refresh-only plan may do: bring the state up to date with the world, nothing else."""


def decide(s: Situation, allowed: frozenset[ActionKind] | None = None) -> Action | None:
    """The first action of `LADDER` for `s` whose kind is in `allowed` (None: any kind)."""
    for rule in LADDER:
        action = rule(s)
        if action is not None and (allowed is None or action.kind in allowed):
            return action
    return None
