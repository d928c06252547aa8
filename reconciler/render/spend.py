"""What the state says was spent: every collected job's tokens and cost, grouped by model,
resource or label, beside the estimate for each resource's current spec.

Pure: reads a `State` (and, for estimates, the desired resources and a price table); nothing
here calls the service. The costs are the ones recorded when the results were collected
(`JobAttempt.cost_usd`), at the prices of that day.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.manifests.desired import Desired
from reconciler.plan.cost import PriceTable, round_usd
from reconciler.plan.workload import attempt_workload
from reconciler.render._words import money
from reconciler.state.document import AttemptPurpose, ResourceRecord, State, TokenUsage

SPEND_FORMAT_VERSION = 1
UNKNOWN = "(unknown)"
"""The group of a job whose model was not recorded, or a resource without the grouping label."""

_COUNTS = ("prompt", "output", "thinking", "cached", "tool_use_prompt", "responses")


@dataclass(frozen=True, slots=True)
class JobSpend:
    """One collected job: what its results reported and cost."""

    resource: str
    attempt: int
    shard: int | None
    job_name: str | None
    model: str
    labels: Mapping[str, str]
    usage: TokenUsage
    cost_usd: float | None
    """None: the model had no price when the results were collected."""
    collected_at: datetime | None


@dataclass(slots=True)
class SpendGroup:
    """Jobs sharing a model, a resource or a label value, added up."""

    key: str
    jobs: int = 0
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    cost_usd: float = 0.0
    unpriced_jobs: int = 0
    """Jobs whose cost is unknown (their tokens are counted, not priced)."""

    def add(self, job: JobSpend) -> None:
        self.jobs += 1
        for name in _COUNTS:
            self.usage[name] += getattr(job.usage, name)
        if job.cost_usd is None:
            self.unpriced_jobs += 1
        else:
            self.cost_usd += job.cost_usd


def _model_of(record: ResourceRecord, usage: TokenUsage, attempt_model: str | None) -> str:
    if usage.model:
        return usage.model
    if attempt_model:
        return attempt_model
    model = record.replacing.get("model")
    return model if isinstance(model, str) else UNKNOWN


def job_spend(state: State) -> list[JobSpend]:
    """Every job of the state whose results were collected with their usage, by resource."""
    spent: list[JobSpend] = []
    for name in sorted(state.resources):
        record = state.resources[name]
        raw_labels = record.in_place.get("labels")
        labels = (
            {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
        )
        for attempt in record.attempts:
            if attempt.usage is None:
                continue
            spent.append(
                JobSpend(
                    resource=name,
                    attempt=attempt.number,
                    shard=attempt.shard,
                    job_name=attempt.job_name,
                    model=_model_of(record, attempt.usage, attempt.model),
                    labels=labels,
                    usage=attempt.usage,
                    cost_usd=attempt.cost_usd,
                    collected_at=attempt.collected_at,
                )
            )
    return spent


def group_key(job: JobSpend, by: str) -> str:
    """The group `job` falls in: `model`, `resource`, or `label:<name>`."""
    if by == "model":
        return job.model
    if by == "resource":
        return job.resource
    label = by.removeprefix("label:")
    return job.labels.get(label, UNKNOWN)


def group_spend(jobs: Iterable[JobSpend], by: str) -> list[SpendGroup]:
    """The jobs added up per group, most expensive first (then by name)."""
    groups: dict[str, SpendGroup] = {}
    for job in jobs:
        key = group_key(job, by)
        groups.setdefault(key, SpendGroup(key)).add(job)
    return sorted(groups.values(), key=lambda g: (-g.cost_usd, g.key))


def tokens_phrase(usage: Mapping[str, int]) -> str:
    """`1,100 in (1,024 cached), 300 out, 500 thinking`."""
    text = f"{usage['prompt']:,} in"
    if usage["cached"]:
        text += f" ({usage['cached']:,} cached)"
    text += f", {usage['output']:,} out"
    if usage["thinking"]:
        text += f", {usage['thinking']:,} thinking"
    return text


def _cost(group: SpendGroup) -> str:
    text = money(group.cost_usd)
    if group.unpriced_jobs:
        text += f" (+{group.unpriced_jobs} job(s) unpriced)"
    return text


def render_spend_text(groupings: Sequence[tuple[str, Sequence[SpendGroup]]]) -> str:
    """One aligned table per grouping (`by model`, `by label:team`, ...), then the total."""
    if not any(groups for _, groups in groupings):
        return "No collected results with token usage in the state yet.\n"
    out: list[str] = []
    total = SpendGroup("total")
    for by, groups in groupings:
        title = by.upper().replace("LABEL:", "LABEL ")
        table = [[title, "JOBS", "TOKENS", "COST"]]
        table += [[g.key, str(g.jobs), tokens_phrase(g.usage), _cost(g)] for g in groups]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        out += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        ]
        out.append("")
    for _, groups in groupings[:1]:
        for group in groups:
            total.jobs += group.jobs
            total.cost_usd += group.cost_usd
            total.unpriced_jobs += group.unpriced_jobs
            for name in _COUNTS:
                total.usage[name] += group.usage[name]
    out.append(
        f"Total: {_cost(total)} at batch price for {total.jobs} job(s), {tokens_phrase(total.usage)} "
        "tokens, as recorded when the results were collected."
    )
    return "\n".join(out) + "\n"


def _group_json(group: SpendGroup) -> dict[str, Any]:
    return {
        "key": group.key,
        "jobs": group.jobs,
        "usage": dict(group.usage),
        "cost_usd": None if group.cost_usd is None else round_usd(group.cost_usd),
        "unpriced_jobs": group.unpriced_jobs,
    }


def render_spend_json(
    groupings: Sequence[tuple[str, Sequence[SpendGroup]]], jobs: Sequence[JobSpend]
) -> str:
    """`{"format_version": 1, "groupings": {by: [group...]}, "total": {...}}`."""
    total_cost = sum(j.cost_usd or 0.0 for j in jobs)
    document = {
        "format_version": SPEND_FORMAT_VERSION,
        "groupings": {by: [_group_json(g) for g in groups] for by, groups in groupings},
        "total": {
            "jobs": len(jobs),
            "cost_usd": round_usd(total_cost),
            "unpriced_jobs": sum(1 for j in jobs if j.cost_usd is None),
            "usage": {name: sum(getattr(j.usage, name) for j in jobs) for name in _COUNTS},
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class ResourceCost:
    """A resource's estimate (its current spec, a full run) beside what its results cost."""

    estimated_input_tokens: int | None
    estimated_cost_usd: float | None
    """Input only, bytes/4, at today's prices; None: no manifest or the model has no price."""
    actual: TokenUsage | None
    """Summed over the jobs the current results come from; None: none collected with usage."""
    actual_cost_usd: float | None
    """None: nothing collected, or a job's model had no price."""

    def tokens_phrase(self) -> str:
        """The actual tokens by kind (`-` when none were collected)."""
        if self.actual is None:
            return "-"
        return tokens_phrase({name: getattr(self.actual, name) for name in _COUNTS})


def resource_costs(desired: Desired, state: State, prices: PriceTable) -> dict[str, ResourceCost]:
    """`resource_cost` of every resource that has one."""
    costs = {}
    for name in sorted(set(desired.resources) | set(state.resources)):
        cost = resource_cost(name, desired, state, prices)
        if cost is not None:
            costs[name] = cost
    return costs


def resource_cost(
    name: str, desired: Desired, state: State, prices: PriceTable
) -> ResourceCost | None:
    """The estimate and the actual cost of one resource; None when there is neither."""
    resource = desired.resources.get(name)
    record = state.resources.get(name)
    estimate = (
        attempt_workload(prices, resource, record, AttemptPurpose.FULL, None)
        if resource is not None
        else None
    )
    actual: TokenUsage | None = None
    actual_cost: float | None = None
    if record is not None and record.results is not None:
        used = [
            a
            for a in record.attempts
            if a.number in record.results.from_attempts and a.usage is not None
        ]
        if used:
            sums = {name: sum(getattr(a.usage, name) for a in used) for name in _COUNTS}
            actual = TokenUsage(**sums)
            costs = [a.cost_usd for a in used]
            actual_cost = None if None in costs else sum(c or 0.0 for c in costs)
    if actual is None and (estimate is None or estimate.estimated_cost_usd is None):
        return None
    return ResourceCost(
        estimated_input_tokens=estimate.estimated_input_tokens if estimate else None,
        estimated_cost_usd=estimate.estimated_cost_usd if estimate else None,
        actual=actual,
        actual_cost_usd=actual_cost,
    )
