"""Per-resource status (desired vs state vs live, and the next action) as rows, text and JSON.

Pure: the status command gathers the three inputs (and, if it made one, the plan) and prints
what these functions return.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import SPEC_HASH_CHARS
from reconciler.manifests.desired import Desired
from reconciler.plan.actions import ActionKind, Plan, Reason
from reconciler.plan.cost import PriceTable
from reconciler.render._words import about, money
from reconciler.render.spend import resource_cost, tokens_phrase
from reconciler.state.document import JobState, ResourceRecord, State

STATUS_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class StatusRow:
    resource: str
    desired: bool
    """A manifest declares it."""
    desired_hash: str | None
    """First 12 hex characters of the desired spec hash."""
    state_hash: str | None
    """First 12 hex characters of the spec hash the state recorded."""
    attempt: int | None
    job_name: str | None
    """The current attempt's job; the first shard's when it has several."""
    recorded: JobState | None
    """The current attempt's state as last saved (of a sharded attempt: its least settled job)."""
    live: JobState | None
    """The job's state at the service now; None when it is not listed (or nothing is recorded).
    Of a sharded attempt: its least settled listed job."""
    results: str | None
    """Where the collected results are."""
    succeeded: int | None
    failed: int | None
    next_action: ActionKind | None
    next_reason: Reason | None
    jobs: int = 0
    """Jobs the current attempt stands on (one per shard)."""
    waited: str | None = None
    """How long the current attempt's unfinished jobs have been at the service (e.g. `2h 5m`),
    as of the live listing; None once they ended."""
    replaced: str | None = None
    """Why the previous attempt was replaced, when it was cancelled for it (e.g. a timeout)."""
    kept_files: tuple[str, ...] = ()
    """Results files of collected jobs the service would not delete (they expire after 48 h)."""
    estimated_cost_usd: float | None = None
    """A full run of the desired spec at batch price: input tokens only, estimated as bytes/4."""
    actual_cost_usd: float | None = None
    """What the jobs the current results come from cost, from their `usageMetadata` at batch
    price when collected; None: none collected with usage, or a model had no price."""
    actual_usage: dict[str, int] | None = None
    """Their tokens by kind (prompt, output, thinking, cached, tool_use_prompt, responses)."""

    @property
    def in_sync(self) -> bool:
        return self.desired and self.desired_hash == self.state_hash and self.results is not None


def status_rows(
    desired: Desired,
    state: State,
    live: Live,
    plan: Plan | None = None,
    prices: PriceTable | None = None,
) -> tuple[StatusRow, ...]:
    """One row per resource known to the manifests or the state, sorted by name; with `prices`,
    each with its estimated and actual cost."""
    rows: list[StatusRow] = []
    # By resource, once: a lookup per row through `Plan.action_for` scans every action, which
    # made status quadratic (7 s of its 19 s CPU at 10,000 resources). The first action wins.
    actions = {a.resource: a for a in reversed(plan.actions)} if plan else {}
    for name in sorted(set(desired.resources) | set(state.resources)):
        cost = resource_cost(name, desired, state, prices) if prices is not None else None
        actual = cost.actual if cost is not None else None
        want = desired.resources.get(name)
        record = state.resources.get(name)
        group = record.attempt_group(record.current_number) if record else ()
        current = group[0] if group else None
        listed = [live.jobs[a.job_name] for a in group if a.job_name and a.job_name in live.jobs]
        action = actions.get(name)
        results = record.results if record else None
        rows.append(
            StatusRow(
                resource=name,
                desired=want is not None,
                desired_hash=want.spec_hash[:SPEC_HASH_CHARS] if want else None,
                state_hash=record.spec_hash[:SPEC_HASH_CHARS] if record else None,
                attempt=current.number if current else None,
                job_name=current.job_name if current else None,
                recorded=_least_settled([a.state for a in group]),
                live=_least_settled([job.state for job in listed]),
                results=results.location if results else None,
                succeeded=results.succeeded if results else None,
                failed=results.failed if results else None,
                next_action=action.kind if action else None,
                next_reason=action.reason if action else None,
                jobs=len(group),
                waited=_waited(listed, live),
                replaced=_replaced(record),
                kept_files=tuple(
                    a.output_file for a in record.attempts if a.output_kept and a.output_file
                )
                if record
                else (),
                estimated_cost_usd=cost.estimated_cost_usd if cost else None,
                actual_cost_usd=cost.actual_cost_usd if cost else None,
                actual_usage=actual.model_dump(exclude={"model"}) if actual else None,
            )
        )
    return tuple(rows)


def _waited(jobs: list[LiveJob], live: Live) -> str | None:
    created = [j.create_time for j in jobs if not j.state.is_terminal and j.create_time]
    if not created:
        return None
    minutes = int((live.observed_at - min(created)).total_seconds() // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def _replaced(record: ResourceRecord | None) -> str | None:
    if record is None or record.current_number < 2:
        return None
    previous = record.attempt_group(record.current_number - 1)
    notes = [a.error for a in previous if a.error and a.error.startswith("replaced because")]
    return notes[0] if notes else None


# Which state stands for several shards: one still moving, else one that ended badly.
_SETTLING_ORDER = (
    JobState.UNKNOWN,
    JobState.PENDING,
    JobState.RUNNING,
    JobState.FAILED,
    JobState.EXPIRED,
    JobState.CANCELLED,
    JobState.SUCCEEDED,
)


def _least_settled(states: list[JobState]) -> JobState | None:
    return min(states, key=_SETTLING_ORDER.index) if states else None


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


_HEADERS = (
    "RESOURCE", "DESIRED", "STATE", "ATTEMPT", "RECORDED", "LIVE", "WAITED", "RESULTS",
    "COST (ACTUAL / EST.)", "NEXT",
)  # fmt: skip


def _cost_cell(row: StatusRow) -> str:
    """`$0.0012 / ~$0.0004`: what the results cost, then the estimate for a full run."""
    if row.actual_usage is not None:
        actual = "unpriced" if row.actual_cost_usd is None else money(row.actual_cost_usd)
    else:
        actual = "-"
    estimate = "-" if row.estimated_cost_usd is None else about(row.estimated_cost_usd)
    return "-" if actual == estimate == "-" else f"{actual} / {estimate}"


def render_status_text(rows: tuple[StatusRow, ...], *, color: bool = False) -> str:
    """An aligned table; NEXT shows the plan's action for the resource when a plan was given."""
    # The cost column only when some resource has a cost to show (status was given prices).
    costs = any(row.estimated_cost_usd is not None or row.actual_usage for row in rows)
    headers = [h for h in _HEADERS if costs or not h.startswith("COST")]
    table = [headers]
    for row in rows:
        results = row.results
        if results is not None:
            results += f" ({row.succeeded} ok, {row.failed} failed)"
        table.append(
            [
                row.resource,
                _cell(row.desired_hash) if row.desired else "(removed)",
                _cell(row.state_hash),
                _cell(row.attempt) + (f" ({row.jobs} jobs)" if row.jobs > 1 else ""),
                _cell(row.recorded),
                _cell(row.live) if row.job_name else "-",
                _cell(row.waited),
                _cell(results),
                *([_cost_cell(row)] if costs else []),
                _cell(row.next_action),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = []
    for index, cells in enumerate(table):
        text = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        if color and index == 0:
            text = f"\033[1m{text}\033[0m"
        lines.append(text)
    if not rows:
        lines.append("(no resources in the manifests or the state)")
    lines.extend(
        f"{row.resource}: attempt {row.attempt} {row.replaced}" for row in rows if row.replaced
    )
    lines.extend(
        f"{row.resource}: the service would not delete {', '.join(row.kept_files)} "
        "(results files expire after 48 h)"
        for row in rows
        if row.kept_files
    )
    lines.extend(_usage_line(row) for row in rows if row.actual_usage is not None)
    if costs:
        lines.append(
            "Costs at batch price: actual from the results' usageMetadata when collected; "
            "estimates for a full run, input tokens only (bytes/4)."
        )
    return "\n".join(lines) + "\n"


def _usage_line(row: StatusRow) -> str:
    """`eval: 1,100 in (1,024 cached), 300 out, 500 thinking tokens`."""
    return f"{row.resource}: {tokens_phrase(row.actual_usage or {})} tokens"


def _row_json(row: StatusRow) -> dict[str, Any]:
    data = asdict(row)
    data["in_sync"] = row.in_sync
    return data


def render_status_json(rows: tuple[StatusRow, ...]) -> str:
    """`{"format_version": 1, "resources": [...]}` with one object per row."""
    document = {
        "format_version": STATUS_FORMAT_VERSION,
        "resources": [_row_json(r) for r in rows],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
