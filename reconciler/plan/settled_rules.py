"""The planner's rules for an attempt that has ended: its results drifted on disk, it ended
badly, its job is gone at the service, or it succeeded (DESIGN §5, lower rows).

Split from `plan.rules` by where an attempt stands; `plan.rules.LADDER` orders them all, and
each rule's docstring says which rules above it it relies on.
"""

from __future__ import annotations

from reconciler.plan import builders
from reconciler.plan.actions import Action, Reason
from reconciler.plan.outcomes import settled, update_reason
from reconciler.plan.situation import BAD_END, Member, Situation, live_names, shard_names
from reconciler.plan.workload import attempt_workload, shard_subset_workload
from reconciler.state.document import JobState

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
    moved = _moved_from(s, gone)
    where = f" on {moved[1]}" if moved else ""
    found = f"ran on {moved[0]}" if moved else "not found"
    return builders.recreate(
        s,
        work,
        detail=f"{shard_names(gone)} of attempt {s.number} "
        f"({_job_names(gone)}) {found}; run again alone{where}",
        next_attempt=s.number,
        reason=Reason.ENDPOINT_CHANGED if moved else Reason.JOB_GONE,
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
    moved = _moved_from(s, gone)
    if moved is not None:
        detail = (
            f"{_job_names(gone)} ran on {moved[0]}, which this project no longer uses (a job "
            f"still running there is not cancelled); create attempt {number} on {moved[1]}"
        )
    else:
        detail = f"{_job_names(gone)} not found; create attempt {number}"
    return builders.recreate(
        s,
        work,
        detail=detail,
        next_attempt=number,
        reason=Reason.ENDPOINT_CHANGED if moved else Reason.JOB_GONE,
    )


def _job_names(members: tuple[Member, ...]) -> str:
    return ", ".join(m.attempt.job_name or "" for m in members)


_FIRST_ENDPOINT = "gemini"
"""What an attempt recorded without an endpoint ran on: the only kind before Vertex."""


def _moved_from(s: Situation, gone: tuple[Member, ...]) -> tuple[str, str] | None:
    """(old kind, current kind) when a gone member was created on another endpoint kind than
    the one the snapshot was read from: it is not gone, only out of sight."""
    current = s.ctx.live.endpoint
    if current is None:
        return None
    for member in gone:
        recorded = member.attempt.endpoint or _FIRST_ENDPOINT
        if recorded != current:
            return recorded, current
    return None


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
