"""What the web view shows, as plain values: built from (desired, state, live, plan) without I/O.

The HTML modules only format these values; everything the view decides (a resource's phase,
its actual cost, which attempt answers which request, the cost series) is decided here, where
it can be tested without a server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.live.snapshot import BatchStats, Live, LiveJob
from reconciler.manifests.desired import Desired
from reconciler.plan.actions import ActionKind, Plan
from reconciler.plan.cost import PriceTable, estimate_tokens
from reconciler.render.spend import job_spend
from reconciler.render.status import StatusRow, status_rows
from reconciler.state.document import AttemptPurpose, JobAttempt, ResourceRecord, State


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one page is drawn from, read at one moment.

    `live` and `plan` are None when the service could not be read (`live_error` says why):
    the view then still shows what the state and the manifests know.
    """

    desired: Desired | None
    state: State
    live: Live | None
    plan: Plan | None
    prices: PriceTable
    desired_error: str | None = None
    live_error: str | None = None


@dataclass(frozen=True, slots=True)
class OverviewRow:
    name: str
    phase: str
    """One word for where the resource stands: synced, running, pending, <action> pending,
    failed, removed, new."""
    status: StatusRow
    model: str | None
    labels: Mapping[str, str]
    requests: int | None
    """Requests the current attempt sends (summed over its shards)."""
    progress: BatchStats | None
    """While its jobs are pending or running: the service's own counts of them (`batchStats`
    of the live listing, summed over the shards that report any); None otherwise."""
    estimated_usd: float | None
    """Batch price of the desired input's tokens (input only, bytes / 4), as the plan prices it."""
    actual_usd: float | None
    """Sum of the attempts' collected `cost_usd`; None while none was collected."""
    last_change: datetime | None


def _group(record: ResourceRecord | None) -> tuple[JobAttempt, ...]:
    return record.attempt_group(record.current_number) if record else ()


def actual_cost(record: ResourceRecord | None) -> float | None:
    """What the resource's collected attempts cost, or None when no attempt has a cost."""
    costs = [a.cost_usd for a in (record.attempts if record else ()) if a.cost_usd is not None]
    return round(sum(costs), 6) if costs else None


def last_change(record: ResourceRecord | None) -> datetime | None:
    if record is None:
        return None
    moments: list[datetime] = []
    for attempt in record.attempts:
        moments += [
            t
            for t in (attempt.intent_at, attempt.updated_at, attempt.ended_at, attempt.collected_at)
            if t is not None
        ]
    if record.results is not None:
        moments.append(record.results.collected_at)
    return max(moments, default=None)


def _phase(row: StatusRow, live_jobs: list[LiveJob], *, live_read: bool) -> str:
    if not row.desired:
        return "removed"
    if row.attempt is None and row.next_action is None:
        return "new"
    moving = [j for j in live_jobs if not j.state.is_terminal]
    if moving:
        return "running" if any(j.state.value == "RUNNING" for j in moving) else "pending"
    if not live_read and row.recorded is not None and not row.recorded.is_terminal:
        # The service could not be read: the state's last word on the job.
        return "running" if row.recorded.value == "RUNNING" else "pending"
    if row.next_action is not None and row.next_action is not ActionKind.NOOP:
        return f"{row.next_action.value} pending"
    if row.recorded is not None and row.recorded.is_terminal and not row.recorded.is_success:
        return "failed"
    if row.in_sync:
        return "synced"
    return "unknown" if row.next_action is None else "synced"


def _progress(live_jobs: list[LiveJob]) -> BatchStats | None:
    """The `batchStats` of the jobs still moving, added up; None when none reports any (a job
    reports them once the service has read its input)."""
    reported = [j.stats for j in live_jobs if not j.state.is_terminal and j.stats is not None]
    return sum(reported, BatchStats()) if reported else None


def _estimate(snapshot: Snapshot, name: str) -> float | None:
    if snapshot.desired is None or name not in snapshot.desired.resources:
        return None
    resource = snapshot.desired.resources[name]
    tokens = estimate_tokens(resource.source.bytes)
    return snapshot.prices.batch_input_cost(resource.manifest.spec.model, tokens)


def _model(snapshot: Snapshot, name: str, record: ResourceRecord | None) -> str | None:
    if snapshot.desired is not None and name in snapshot.desired.resources:
        return snapshot.desired.resources[name].manifest.spec.model
    recorded = record.replacing.get("model") if record else None
    return str(recorded) if recorded is not None else None


def labels_of(snapshot: Snapshot, name: str) -> dict[str, str]:
    """The manifest's labels, else the ones the state recorded when it was applied."""
    if snapshot.desired is not None and name in snapshot.desired.resources:
        return dict(snapshot.desired.resources[name].manifest.metadata.labels)
    record = snapshot.state.resources.get(name)
    recorded = record.in_place.get("labels") if record else None
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}


def overview_rows(snapshot: Snapshot) -> tuple[OverviewRow, ...]:
    """One row per resource in the manifests or the state, sorted by name."""
    desired = snapshot.desired or Desired(resources={}, manifests_sha256="")
    live = snapshot.live or Live(observed_at=datetime.min)
    rows: list[OverviewRow] = []
    for status in status_rows(desired, snapshot.state, live, snapshot.plan):
        record = snapshot.state.resources.get(status.resource)
        group = _group(record)
        listed = [live.jobs[a.job_name] for a in group if a.job_name and a.job_name in live.jobs]
        counts = [a.request_count for a in group if a.request_count is not None]
        rows.append(
            OverviewRow(
                name=status.resource,
                phase=_phase(status, listed, live_read=snapshot.live is not None),
                status=status,
                model=_model(snapshot, status.resource, record),
                labels=labels_of(snapshot, status.resource),
                requests=sum(counts) if counts else None,
                progress=_progress(listed),
                estimated_usd=_estimate(snapshot, status.resource),
                actual_usd=actual_cost(record),
                last_change=last_change(record),
            )
        )
    return tuple(rows)


_PURPOSE_WHY = {
    AttemptPurpose.FULL: "a full run of the source",
    AttemptPurpose.RETRY_FAILED: "a retry of the requests that failed",
    AttemptPurpose.INCREMENTAL: "an incremental run of the new and changed requests",
}


def why_created(record: ResourceRecord, attempt: JobAttempt) -> str:
    """Why an attempt's job was made: a rerun of a shard, a replacement (with the reason the
    state recorded on the job it replaced), or the attempt's purpose."""
    if attempt.rerun:
        return f"shard {attempt.shard} run again alone (rerun {attempt.rerun})"
    if attempt.number == 1:
        return f"first attempt: {_PURPOSE_WHY[attempt.purpose]}"
    previous = record.attempt_group(attempt.number - 1)
    replaced = [a.error for a in previous if a.error and a.error.startswith("replaced because")]
    if replaced:
        return f"{replaced[0]}: {_PURPOSE_WHY[attempt.purpose]}"
    if previous and previous[0].spec_hash != attempt.spec_hash:
        return f"the manifest or its input changed: {_PURPOSE_WHY[attempt.purpose]}"
    ended = sorted({a.state.value for a in previous if a.state.is_terminal})
    if ended:
        return (
            f"attempt {attempt.number - 1} ended {', '.join(ended)}: "
            + (_PURPOSE_WHY[attempt.purpose])
        )
    return _PURPOSE_WHY[attempt.purpose]


@dataclass(frozen=True, slots=True)
class CostPoint:
    at: datetime
    usd: float
    resource: str
    model: str
    labels: Mapping[str, str] = field(default_factory=dict)


def cost_points(snapshot: Snapshot) -> tuple[CostPoint, ...]:
    """Every collected job with a cost, oldest first, under the model its results were billed
    on (`TokenUsage.model`, as `reconciler cost` groups them), not the manifest's current one."""
    points: list[CostPoint] = []
    for job in job_spend(snapshot.state):
        if job.cost_usd is None or job.collected_at is None:
            continue
        labels = labels_of(snapshot, job.resource)
        points.append(CostPoint(job.collected_at, job.cost_usd, job.resource, job.model, labels))
    return tuple(sorted(points, key=lambda p: (p.at, p.resource)))


def label_keys(points: tuple[CostPoint, ...]) -> list[str]:
    return sorted({k for p in points for k in p.labels})


def cumulative_series(
    points: tuple[CostPoint, ...], by: str
) -> dict[str, list[tuple[datetime, float]]]:
    """Per group (`model`, or a label key whose missing values group as `(none)`): the running
    total of spend at each collection time."""
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    totals: dict[str, float] = defaultdict(float)
    for point in points:
        group = point.model if by == "model" else point.labels.get(by, "(none)")
        totals[group] += point.usd
        series[group].append((point.at, round(totals[group], 6)))
    return dict(sorted(series.items()))
