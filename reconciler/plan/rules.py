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

from reconciler.plan import builders
from reconciler.plan.actions import Action, ActionKind, Reason
from reconciler.plan.outcomes import (
    incremental,
    replacement,
    retry_failed_requests,
    settled,
    update_reason,
)
from reconciler.plan.situation import (
    BAD_END,
    Member,
    Situation,
    adoptable,
    live_names,
    shard_names,
)
from reconciler.plan.workload import attempt_workload, shard_subset_workload
from reconciler.state.document import AttemptPurpose, JobState

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


def adopt_recorded_intent(s: Situation) -> Action | None:
    """An intent of the current attempt has a live job carrying its tag -> adopt it."""
    jobs = live_names([m for m in s.members if m.attempt.is_intent])
    if not jobs:
        return None
    return builders.adopt(s, s.number, jobs)


def create_lost_intent(s: Situation) -> Action | None:
    """An intent of the current attempt never reached the service -> create it again under
    the same attempt number (no job carries its tag, so the number is still free); of a
    sharded attempt only the lost shards, since the others have jobs and would be paid twice."""
    lost = [m for m in s.members if m.lost]
    if s.resource is None or not lost:
        return None
    if s.sharded:
        work = shard_subset_workload(
            s.ctx.prices,
            s.resource,
            [m.attempt for m in s.members],
            [m.attempt for m in lost],
            s.purpose,
        )
        detail = f"{shard_names(lost)} of attempt {s.number} never reached the service"
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
    )


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


def refresh_in_flight(s: Situation) -> Action | None:
    """A job of the current attempt is pending or running -> record its progress."""
    moving = [m for m in s.members if m.in_progress]
    if not moving:
        return None
    states = "/".join(sorted({m.state.value for m in moving}))
    return builders.refresh(s, live_names(moving), detail=f"attempt {s.number} is {states}")


# -- row: present, collected, results drifted on disk -> download again, else report ----------


def restore_drifted_results(s: Situation) -> Action | None:
    """The current attempt's results were saved but are missing or changed on disk -> collect
    them again while every job that made them still has them; else report that they are lost.
    Only results that came from the current attempt alone can be restored: a merged copy holds
    earlier attempts' results, which no job of this attempt has.
    Relies on: nothing of the current attempt is in flight (`refresh_in_flight`)."""
    check = s.ctx.results_checks.get(s.name)
    if s.resource is None or s.record is None or check is None or not s.collected:
        return None
    results = s.record.results
    assert results is not None  # collected
    where = f"results at {results.location} are {check.value} on disk"
    restorable = (
        results.from_attempts in ((), (s.number,))
        and bool(s.members)
        and all(m.live is not None and m.state is JobState.SUCCEEDED for m in s.members)
    )
    if restorable:
        return builders.collect(
            s,
            Reason.RESULTS_DRIFTED,
            live_names(s.members),
            detail=f"{where}: download them again from attempt {s.number}",
        )
    return builders.noop(
        s,
        Reason.RESULTS_LOST,
        attempt=s.number,
        detail=f"{where} and the service no longer has them; run "
        f"`reconciler apply --replace {s.name}` to run it again",
    )


# -- row: present, same spec, ended badly -> resubmit if policy says so, else report -----------


def resubmit_ended_badly(s: Situation) -> Action | None:
    """The current attempt ended badly and policy resubmits -> a new attempt.
    Relies on: `resubmit_failed_shards` took a sharded attempt, so this one has one job."""
    bad = s.bad
    if s.resource is None or not bad or s.refusal is not None:
        return None
    end = bad[0].state
    number = s.next_attempt
    work = attempt_workload(s.ctx.prices, s.resource, s.record, s.purpose, s.changes_for(s.purpose))
    return builders.resubmit(
        s,
        BAD_END[end],
        work,
        detail=f"attempt {s.number} ended {end.value}; attempt {number} of at most "
        f"{s.resource.manifest.spec.policy.max_attempts}",
        ended=live_names(bad),
        attempt=s.number,
        next_attempt=number,
    )


def settle_given_up_shards(s: Situation) -> Action | None:
    """Shards ended badly for good and the attempt's results were collected (the others'
    results saved, theirs recorded as failed) -> as any collected results.
    Relies on: resubmit rules passed, so the bad shards are given up for good."""
    if s.resource is None or not s.bad or not s.sharded or s.refusal is None:
        return None
    if not s.collected:
        return None
    return settled(s)


def collect_surviving_shards(s: Situation) -> Action | None:
    """Shards ended badly for good while their siblings succeeded -> save what the siblings
    produced before the service deletes it; the given-up shards' requests become failed ones."""
    bad, refusal = s.bad, s.refusal
    if not bad or not s.sharded or refusal is None or s.collected:
        return None
    good = [m for m in s.members if m.state.is_success]
    if not good or any(m.live is None for m in good):
        return None
    return builders.collect(
        s,
        BAD_END[bad[0].state],
        live_names(s.members),
        detail=f"collect {shard_names(good)} of attempt {s.number}; the requests of "
        f"{shard_names(bad)} ({bad[0].state.value}) are recorded as failed, not resubmitted "
        f"because {refusal.text}",
        given_up=tuple(m.attempt.shard or 0 for m in bad),
    )


def record_bad_end(s: Situation) -> Action | None:
    """The current attempt ended badly and the state does not know yet -> record how it ended.
    Relies on: the resubmit rules above passed, so this end is final (or refresh-only)."""
    bad = s.bad
    if not bad or not s.stale:
        return None
    end = bad[0].state
    why = f"; not resubmitted because {s.refusal.text}" if s.refusal else ""
    return builders.collect(
        s,
        BAD_END[end],
        live_names(s.members),
        detail=f"record that attempt {s.number} ended {end.value}{why}",
    )


def update_after_bad_end(s: Situation) -> Action | None:
    """Ended badly for good, already recorded, but in-place fields changed -> update them.
    Relies on: `record_bad_end` passed, so the state already knows how it ended."""
    if s.resource is None or not s.bad or s.refusal is None or not s.in_place_changed:
        return None
    return builders.update(s, update_reason(s))


def report_bad_end(s: Situation) -> Action | None:
    """Ended badly for good and recorded -> nothing to do, but say so (a report no-op).
    Relies on: `update_after_bad_end` passed, so no in-place field changed."""
    refusal = s.refusal
    if s.resource is None or not s.bad or refusal is None:
        return None
    return builders.noop(
        s, refusal, detail=f"attempt {s.number} ended {s.bad[0].state.value}", attempt=s.number
    )


# -- row: present, same spec, recorded job gone (404) -> recreate unless collected (drift) ------


def _uncollected_gone(s: Situation) -> tuple[Member, ...]:
    """Members the service no longer lists, of an attempt whose results were never saved.
    Meaningful once no member ended badly (the rules above take those)."""
    if s.resource is None or s.bad or s.collected:
        return ()
    return s.gone


def recreate_gone_shards(s: Situation) -> Action | None:
    """Shards are gone before their results were saved and attempts remain -> run them again
    alone; their siblings' results are still there to collect. Relies on: no member is lost,
    unadopted or in flight (the rules above), so every member that is not gone ended well."""
    gone = _uncollected_gone(s)
    if s.resource is None or not gone or not s.sharded:
        return None
    if s.tries(gone) >= s.resource.manifest.spec.policy.max_attempts:
        return None
    work = shard_subset_workload(
        s.ctx.prices,
        s.resource,
        [m.attempt for m in s.members],
        [m.attempt for m in gone],
        s.purpose,
    )
    return builders.recreate(
        s,
        work,
        detail=f"{shard_names(gone)} of attempt {s.number} "
        f"({_job_names(gone)}) not found; run again alone",
        next_attempt=s.number,
    )


def update_gone_exhausted(s: Situation) -> Action | None:
    """Gone, uncollected, attempts exhausted, in-place fields changed -> update them."""
    gone = _uncollected_gone(s)
    if s.resource is None or not gone or not s.in_place_changed:
        return None
    if s.tries(gone) < s.resource.manifest.spec.policy.max_attempts:
        return None
    return builders.update(s, update_reason(s))


def report_gone_exhausted(s: Situation) -> Action | None:
    """Gone, uncollected, attempts exhausted -> nothing to do, but say so."""
    gone = _uncollected_gone(s)
    if s.resource is None or not gone:
        return None
    if s.tries(gone) < s.resource.manifest.spec.policy.max_attempts:
        return None
    return builders.noop(
        s,
        Reason.ATTEMPTS_EXHAUSTED,
        detail=f"{_job_names(gone)} is gone at the service before its results were collected",
        attempt=s.number,
    )


def recreate_gone_job(s: Situation) -> Action | None:
    """The job is gone before its results were saved and attempts remain -> a new attempt.
    Relies on: the shard and exhausted cases above passed."""
    gone = _uncollected_gone(s)
    if s.resource is None or not gone:
        return None
    number = s.next_attempt
    work = attempt_workload(s.ctx.prices, s.resource, s.record, s.purpose, s.changes_for(s.purpose))
    return builders.recreate(
        s,
        work,
        detail=f"{_job_names(gone)} not found; create attempt {number}",
        next_attempt=number,
    )


def _job_names(members: tuple[Member, ...]) -> str:
    return ", ".join(m.attempt.job_name or "" for m in members)


# -- row: present, same spec, succeeded -> collect, then no-op ---------------------------------


def collect_succeeded(s: Situation) -> Action | None:
    """The current attempt ended and nothing ended badly, results not saved yet -> download.
    Relies on: nothing in flight (`refresh_in_flight`) and nothing gone (the drift rules)."""
    jobs = live_names(s.members)
    if s.bad or not jobs or s.collected:
        return None
    where = f" to {s.resource.manifest.spec.output}" if s.resource else ""
    return builders.collect(
        s,
        Reason.JOB_SUCCEEDED,
        jobs,
        detail=f"download the results of attempt {s.number}{where}",
    )


def settle_collected(s: Situation) -> Action | None:
    """Succeeded and collected -> retry failed requests, update in place, or no-op. The last
    rung: a desired, recorded resource always stops here at the latest."""
    if s.resource is None or s.record is None:
        return None
    return settled(s)


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
    # an intent: its job reached the service -> adopt; it did not -> create again
    adopt_recorded_intent,
    create_lost_intent,
    # shards ended badly -> resubmit them at once, even while their siblings run
    resubmit_failed_shards,
    # in flight -> refresh
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
