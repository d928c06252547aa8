"""One builder per action kind: which fields each kind sets, in one place.

The rules of plan.rules decide *which* action a resource gets; these functions decide what that
action carries. Every action on a desired resource carries the situation's field diff (applying
any action also brings the in-place fields up to date), and only the job-creating builders copy
a `Workload` onto the action, so a COLLECT can never claim requests or cost.
"""

from __future__ import annotations

from reconciler.plan.actions import Action, ActionKind, Reason, RequestChanges
from reconciler.plan.situation import Situation
from reconciler.plan.workload import Workload


def _creating(
    kind: ActionKind,
    s: Situation,
    reason: Reason,
    work: Workload,
    *,
    detail: str,
    attempt: int | None,
    next_attempt: int,
    job_names: tuple[str, ...] = (),
    changes: RequestChanges | None = None,
    cancel_first: bool = False,
) -> Action:
    """A job-creating action: the one place a workload becomes action fields."""
    return Action(
        kind,
        s.name,
        reason,
        detail=detail,
        diff=s.diff,
        request_changes=changes,
        job_names=job_names,
        attempt=attempt,
        next_attempt=next_attempt,
        shards_to_create=work.shards_to_create,
        purpose=work.purpose,
        cancel_first=cancel_first,
        model=work.model,
        jobs=work.jobs,
        requests=work.requests,
        reused_requests=work.reused_requests,
        bytes=work.bytes,
        estimated_input_tokens=work.estimated_input_tokens,
        estimated_cost_usd=work.estimated_cost_usd,
        max_output_tokens=work.max_output_tokens,
        max_output_cost_usd=work.max_output_cost_usd,
        input_tokens_counted=work.tokens_counted,
    )


def create(
    s: Situation,
    reason: Reason,
    work: Workload,
    *,
    next_attempt: int,
    attempt: int | None = None,
    detail: str = "",
    adopting: tuple[str, ...] = (),
) -> Action:
    """CREATE: a first job, or one whose earlier create never reached the service (adopting
    first the jobs its sibling intents did create)."""
    return _creating(
        ActionKind.CREATE,
        s,
        reason,
        work,
        detail=detail,
        attempt=attempt,
        next_attempt=next_attempt,
        job_names=adopting,
    )


def replace(
    s: Situation,
    reason: Reason,
    work: Workload,
    *,
    running: tuple[str, ...],
    changes: RequestChanges | None,
    next_attempt: int,
) -> Action:
    """REPLACE: cancel what still runs (`running`), then create attempt `next_attempt`."""
    detail = (
        f"cancel {', '.join(running)}, then create attempt {next_attempt}"
        if running
        else f"create attempt {next_attempt}"
    )
    return _creating(
        ActionKind.REPLACE,
        s,
        reason,
        work,
        detail=detail,
        attempt=s.number or None,
        next_attempt=next_attempt,
        job_names=running,
        changes=changes,
        cancel_first=bool(running),
    )


def resubmit(
    s: Situation,
    reason: Reason,
    work: Workload,
    *,
    detail: str,
    attempt: int | None,
    next_attempt: int,
    ended: tuple[str, ...] = (),
    changes: RequestChanges | None = None,
) -> Action:
    """RESUBMIT: run again what ended badly (`ended`: those jobs) or the failed requests."""
    return _creating(
        ActionKind.RESUBMIT,
        s,
        reason,
        work,
        detail=detail,
        attempt=attempt,
        next_attempt=next_attempt,
        job_names=ended,
        changes=changes,
    )


def recreate(
    s: Situation,
    work: Workload,
    *,
    detail: str,
    next_attempt: int,
    reason: Reason = Reason.JOB_GONE,
) -> Action:
    """RECREATE: drift; jobs of the current attempt are gone before their results were saved
    (`Reason.ENDPOINT_CHANGED`: they ran on an endpoint the project no longer uses)."""
    return _creating(
        ActionKind.RECREATE,
        s,
        reason,
        work,
        detail=detail,
        attempt=s.number,
        next_attempt=next_attempt,
    )


def adopt(s: Situation, number: int, jobs: tuple[str, ...]) -> Action:
    """ADOPT: record live jobs that carry this resource's identity tag as attempt `number`."""
    return Action(
        ActionKind.ADOPT,
        s.name,
        Reason.TAGGED_JOB_FOUND,
        detail=f"adopt {', '.join(jobs)} as attempt {number}",
        diff=s.diff,
        job_names=jobs,
        attempt=number,
    )


def refresh(s: Situation, jobs: tuple[str, ...], *, detail: str) -> Action:
    """REFRESH: record the progress of the current attempt's unfinished jobs."""
    return Action(
        ActionKind.REFRESH,
        s.name,
        Reason.JOB_IN_PROGRESS,
        detail=detail,
        diff=s.diff,
        job_names=jobs,
        attempt=s.number,
    )


def collect(
    s: Situation,
    reason: Reason,
    jobs: tuple[str, ...],
    *,
    detail: str,
    given_up: tuple[int, ...] = (),
) -> Action:
    """COLLECT: save the results of the current attempt and record how its jobs ended."""
    return Action(
        ActionKind.COLLECT,
        s.name,
        reason,
        detail=detail,
        diff=s.diff,
        job_names=jobs,
        attempt=s.number,
        shards_given_up=given_up,
    )


def update(
    s: Situation,
    reason: Reason,
    *,
    attempt: int | None = None,
    detail: str = "",
    changes: RequestChanges | None = None,
    reused: int = 0,
    job_names: tuple[str, ...] = (),
) -> Action:
    """UPDATE: bring in-place fields (and results) up to the desired spec; no new job.
    `job_names`: the pending or running jobs whose priority the service is asked to change."""
    return Action(
        ActionKind.UPDATE,
        s.name,
        reason,
        detail=detail,
        diff=s.diff,
        request_changes=changes,
        job_names=job_names,
        attempt=attempt,
        reused_requests=reused,
    )


def cancel(s: Situation, running: tuple[str, ...]) -> Action:
    """CANCEL: the manifest is gone and `running` still run; forget the resource afterwards."""
    return Action(
        ActionKind.CANCEL,
        s.name,
        Reason.DESTROYED if s.ctx.destroying else Reason.NOT_DESIRED,
        detail=f"cancel {', '.join(running)}, then forget",
        job_names=running,
        attempt=s.number or None,
    )


def forget(s: Situation) -> Action:
    """FORGET: the manifest is gone and nothing runs; the results stay where they are."""
    results = s.record.results if s.record else None
    where = f"; results stay at {results.location}" if results else ""
    return Action(
        ActionKind.FORGET,
        s.name,
        Reason.DESTROYED if s.ctx.destroying else Reason.NOT_DESIRED,
        detail=f"drop the record{where}",
        attempt=s.number or None,
    )


def noop(s: Situation, reason: Reason, *, attempt: int | None, detail: str = "") -> Action:
    """NOOP: nothing to do; `reason` says whether that is up to date or a report."""
    return Action(ActionKind.NOOP, s.name, reason, detail=detail, diff=s.diff, attempt=attempt)
