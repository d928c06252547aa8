"""Outcomes several rules of plan.rules end in: settle collected results, or replace.

Kept apart from the ladder because more than one row reaches them (a replacing change, an
in-place update that ran nothing, a sharded attempt given up), and each must end the same way.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.model import Rerun
from reconciler.plan import builders
from reconciler.plan.actions import Action, DiffEntry, Reason, RequestChanges
from reconciler.plan.situation import Situation
from reconciler.plan.workload import attempt_workload
from reconciler.state.document import AttemptPurpose

# Which replacing field a replace is attributed to when several changed: the most consequential.
_REPLACE_REASONS = (
    ("model", Reason.MODEL_CHANGED),
    ("task", Reason.TASK_CHANGED),
    ("source", Reason.SOURCE_CHANGED),
    ("media", Reason.MEDIA_CHANGED),
    ("config", Reason.CONFIG_CHANGED),
)
_UPDATE_REASONS = (
    ("output", Reason.OUTPUT_MOVED),
    ("policy", Reason.POLICY_CHANGED),
    ("shards", Reason.SHARDS_CHANGED),
    ("labels", Reason.LABELS_CHANGED),
    ("priority", Reason.PRIORITY_CHANGED),
    ("source", Reason.SOURCE_CHANGED),
    ("config", Reason.CONFIG_CHANGED),
)


def first_reason(
    diff: tuple[DiffEntry, ...], table: tuple[tuple[str, Reason], ...], default: Reason
) -> Reason:
    heads = {entry.path.split(".", 1)[0].split("[", 1)[0] for entry in diff}
    for head, reason in table:
        if head in heads:
            return reason
    return default


def update_reason(s: Situation) -> Reason:
    return first_reason(s.diff, _UPDATE_REASONS, Reason.SPEC_CHANGED)


def priority_change(s: Situation) -> tuple[int, int] | None:
    """(recorded, desired) priority when they differ, unset counting as the service's 0."""
    for entry in s.diff:
        if entry.path == "priority":
            old = entry.old if isinstance(entry.old, int) else 0
            new = entry.new if isinstance(entry.new, int) else 0
            return (old, new) if old != new else None
    return None


# -- results are collected: retry failed requests, update in place, or nothing -----------------


def retry_failed_requests(s: Situation, changes: RequestChanges | None = None) -> Action | None:
    """Some requests of the collected results failed and policy retries them (a new attempt).

    `changes`: the source also changed without a request to run, so the requests kept from the
    previous results are reported as reused.
    """
    assert s.resource is not None and s.record is not None
    policy = s.resource.manifest.spec.policy
    results = s.record.results
    if (
        results is None
        or results.failed <= 0
        or s.retries_used() >= policy.retry_failed_requests
        or s.attempts_used() >= policy.max_attempts
    ):
        return None
    number = s.next_attempt
    work = attempt_workload(s.ctx.prices, s.resource, s.record, AttemptPurpose.RETRY_FAILED, None)
    if changes is not None:
        work = replace(work, reused_requests=max(changes.unchanged - work.requests, 0))
    return builders.resubmit(
        s,
        Reason.FAILED_REQUESTS,
        work,
        detail=f"{results.failed} request(s) failed; attempt {number} re-runs only those",
        attempt=s.number or None,
        next_attempt=number,
        changes=changes,
    )


def settled(s: Situation) -> Action:
    """Results are collected: retry failed requests, else update in place, else nothing."""
    assert s.resource is not None and s.record is not None
    retry = retry_failed_requests(s)
    if retry is not None:
        return retry
    if s.diff or not s.is_current(s.record.spec_hash):
        reason = update_reason(s)
        change = priority_change(s) if reason is Reason.PRIORITY_CHANGED else None
        # Settled means no job of this attempt runs: the service keeps the priority it ran with.
        detail = (
            f"priority {change[0]} -> {change[1]}, state only: its job has ended" if change else ""
        )
        return builders.update(s, reason, attempt=s.number or None, detail=detail)
    all_gone = s.number > 0 and all(
        a.job_name is not None and a.job_name not in s.ctx.live.jobs
        for a in s.record.attempts
        if a.number == s.number
    )
    results = s.record.results
    return builders.noop(
        s,
        Reason.RESULTS_COLLECTED if all_gone else Reason.UP_TO_DATE,
        detail=f"{results.failed} request(s) failed" if results and results.failed else "",
        attempt=s.number or None,
    )


def incremental(s: Situation) -> bool:
    """Results of unchanged requests can be reused only when nothing but the source changed:
    another model, task, config or media makes every previous result stale. Results in a
    BigQuery table are the job's own rows, never merged, so every attempt there runs whole."""
    assert s.resource is not None and s.record is not None
    replacing = [e for e in s.diff if e.forces_replacement]
    return (
        not s.forced
        and not is_bigquery(s.resource.manifest.spec.output)
        and s.resource.manifest.spec.policy.rerun is Rerun.CHANGED
        and s.request_changes() is not None
        and s.record.results is not None
        and not s.running_jobs
        and bool(replacing)
        and all(e.path.startswith("source.") for e in replacing)
    )


def replacement(s: Situation) -> Action:
    """REPLACE the desired resource with a new attempt, cancelling whatever still runs."""
    assert s.resource is not None and s.record is not None
    reuse = incremental(s)
    replacing = tuple(e for e in s.diff if e.forces_replacement)
    reason = (
        Reason.REPLACE_REQUESTED
        if s.forced
        else first_reason(replacing, _REPLACE_REASONS, Reason.SPEC_CHANGED)
    )
    purpose = AttemptPurpose.INCREMENTAL if reuse else AttemptPurpose.FULL
    changes = s.request_changes()
    work = attempt_workload(s.ctx.prices, s.resource, s.record, purpose, changes)
    return builders.replace(
        s, reason, work, running=s.running_jobs, changes=changes, next_attempt=s.next_attempt
    )
