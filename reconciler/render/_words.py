"""Wording and number formatting shared by the plan renderers, so text and Markdown agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import assert_never

from pydantic import JsonValue

from reconciler.plan.actions import Action, ActionKind, DiffChange, Plan, StorageFit, TokenFit


def verb(kind: ActionKind) -> str:
    """How the "# <resource> ..." heading line describes what happens to the resource."""
    match kind:
        case ActionKind.CREATE:
            return "will be created"
        case ActionKind.ADOPT:
            return "will be adopted"
        case ActionKind.REFRESH:
            return "will be refreshed"
        case ActionKind.COLLECT:
            return "will be collected"
        case ActionKind.REPLACE:
            return "will be replaced"
        case ActionKind.UPDATE:
            return "will be updated in place"
        case ActionKind.RESUBMIT:
            return "will be resubmitted"
        case ActionKind.RECREATE:
            return "will be recreated"
        case ActionKind.CANCEL:
            return "will be cancelled, then forgotten"
        case ActionKind.FORGET:
            return "will be forgotten"
        case ActionKind.NOOP:
            return "needs no action"
        case _:
            assert_never(kind)


def count_phrase(kind: ActionKind, n: int) -> str:
    """`2 to create` ... as in Terraform's "Plan:" line."""
    match kind:
        case ActionKind.NOOP:
            return f"{n} unchanged"
        case (
            ActionKind.CREATE
            | ActionKind.ADOPT
            | ActionKind.REFRESH
            | ActionKind.COLLECT
            | ActionKind.REPLACE
            | ActionKind.UPDATE
            | ActionKind.RESUBMIT
            | ActionKind.RECREATE
            | ActionKind.CANCEL
            | ActionKind.FORGET
        ):
            return f"{n} to {kind.value}"
        case _:
            assert_never(kind)


def headline(action: Action) -> str:
    """`eval-summaries will be replaced because the source changed`."""
    return f"{action.resource} {verb(action.kind)} because {action.reason.text}"


def plan_line(plan: Plan) -> str:
    """`Plan: 2 to create, 1 to replace.` or the no-changes sentence."""
    if not plan.has_changes:
        running = plan.summary.counts.get(ActionKind.REFRESH, 0)
        tail = f" {running} job(s) still running." if running else ""
        return "No changes. The live jobs match the manifests." + tail
    parts = [
        count_phrase(kind, n)
        for kind, n in plan.summary.counts.items()
        if n and kind is not ActionKind.NOOP
    ]
    if plan.cleanup:
        parts.append(f"{len(plan.cleanup)} service file(s) to delete")
    return "Plan: " + ", ".join(parts) + "."


def cleanup_lines(plan: Plan) -> list[str]:
    """One line per service file apply deletes that an earlier run left (`Plan.cleanup`)."""
    return [
        f"delete {item.role.value} file {item.file_name} of {item.resource} attempt {item.attempt}"
        for item in plan.cleanup
    ]


CLEANUP_HEADING = "Left to delete by an earlier run (collected, not recorded as deleted):"


def value(v: JsonValue) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def size(n: int) -> str:
    """Bytes in SI units, one decimal: `4.0 kB`, `1.2 GB`."""
    if n < 1000:
        return f"{n} B"
    amount = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        amount /= 1000
        if amount < 1000 or unit == "TB":
            break
    return f"{amount:.1f} {unit}"


def money(usd: float) -> str:
    if usd == 0:
        return "$0.00"
    if usd < 0.0001:
        return "<$0.0001"
    if usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"


def about(usd: float) -> str:
    """An estimated amount: `~$0.15`, or `<$0.0001` when it rounds to nothing."""
    text = money(usd)
    return text if text.startswith("<") else "~" + text


def cost_line(plan: Plan) -> str:
    """The estimate with every caveat it needs."""
    s = plan.summary
    text = (
        f"Estimated cost: {about(s.estimated_cost_usd)} at batch price for "
        f"~{s.estimated_input_tokens:,} input tokens ({size(s.bytes)}, {s.requests:,} requests"
    )
    if s.reused_requests:
        text += f", {s.reused_requests:,} reused"
    text += f"). {_input_method(plan)}; prices as of {s.price_table_as_of}."
    if s.unpriced_models:
        text += f" Not priced: {', '.join(s.unpriced_models)}."
    text += " " + _output_sentence(s.max_output_tokens, s.max_output_cost_usd)
    return text


def _input_method(plan: Plan) -> str:
    """Which estimate of input tokens the plan used."""
    counted = plan.summary.counted_token_actions
    running = sum(n for kind, n in plan.summary.counts.items() if kind.creates_job)
    if not counted:
        return "Input tokens estimated as bytes/4"
    if counted >= running:
        return "Input tokens counted with the SDK's local tokenizer (text parts)"
    return (
        f"Input tokens counted with the SDK's local tokenizer for {counted} of {running} "
        "resources, estimated as bytes/4 for the rest"
    )


def _output_sentence(tokens: int | None, cost: float | None) -> str:
    """The output range the requests' `maxOutputTokens` allow."""
    if tokens is None:
        return (
            "Output: not bounded (a request sets no generationConfig.maxOutputTokens), so not "
            "in the estimate."
        )
    if tokens == 0:
        return "Output: none."
    priced = f", up to {about(cost)} more" if cost is not None else ""
    return f"Output: 0–{tokens:,} tokens (maxOutputTokens, thinking included){priced}."


def admission_line(plan: Plan) -> str | None:
    """How the new jobs fit the concurrent-job and enqueued-token limits, when some must wait,
    and the Files storage, when the uploads do not fit at once."""
    a = plan.admission
    if a is None:
        return None
    storage = _storage_fit(a.storage)
    if not a.waiting:
        return storage
    waves = "1 wave" if a.waves == 1 else f"{a.waves} waves"
    text = (
        f"{a.start_now} job(s) start now, {a.waiting} more in {waves} as capacity frees "
        f"(max_concurrent_jobs {a.limit}, {a.running} running"
    )
    tokens = [_token_fit(fit) for fit in a.tokens]
    if tokens:
        text += "; estimated enqueued input tokens: " + ", ".join(tokens)
    text += "). `apply --wait` starts them as jobs end; `--no-wait` leaves them for the next apply."
    return f"{text}\n{storage}" if storage else text


def _storage_fit(fit: StorageFit | None) -> str | None:
    if fit is None or fit.used + fit.uploading <= fit.limit:
        return None
    return (
        f"Files storage: {size(fit.used)} in use + {size(fit.uploading)} to upload, more than "
        f"the project's {size(fit.limit)} (limits.storage_bytes). Uploads past it wait for "
        "collected jobs' inputs to be deleted (`apply --wait`), or for the next apply."
    )


def _token_fit(fit: TokenFit) -> str:
    text = f"{fit.model} ~{fit.enqueued + fit.start_now:,} enqueued"
    if fit.waiting:
        text += f" + ~{fit.waiting:,} waiting"
    return text + f" of {fit.limit:,}"


def workload_line(action: Action) -> str | None:
    """What a job-creating action would run, or None for the others."""
    if not action.kind.creates_job:
        return None
    text = f"runs {action.requests:,} request(s) in {action.jobs} job(s)"
    shards = action.shards_to_create
    if shards:
        named = ", ".join(str(shard) for shard in shards)
        text += f" (shard{'s' if len(shards) > 1 else ''} {named} alone)"
    elif action.jobs > 1:
        text += f" (shards of up to {-(-action.requests // action.jobs):,} requests)"
    if action.reused_requests:
        text += f" ({action.reused_requests:,} reused)"
    how = " (counted)" if action.input_tokens_counted else ""
    text += f", {size(action.bytes)}, ~{action.estimated_input_tokens:,} input tokens{how}"
    cost = action.estimated_cost_usd
    text += f", {about(cost)}" if cost is not None else ", cost unknown (model not priced)"
    if action.max_output_tokens:
        text += f"; output 0–{action.max_output_tokens:,} tokens"
        if action.max_output_cost_usd is not None:
            text += f" (up to {about(action.max_output_cost_usd)})"
    return text


@dataclass(frozen=True, slots=True)
class Line:
    """A body line: `sign` is `+`, `-`, `~` or ` ` (information)."""

    sign: str
    text: str


def diff_lines(action: Action) -> list[Line]:
    """The field diff as `+ path: new`, `- path: old`, `~ path: old -> new` lines."""
    lines: list[Line] = []
    for entry in action.diff:
        note = "  # forces replacement" if entry.forces_replacement else ""
        match entry.change:
            case DiffChange.ADDED:
                lines.append(Line("+", f"{entry.path}: {value(entry.new)}{note}"))
            case DiffChange.REMOVED:
                lines.append(Line("-", f"{entry.path}: {value(entry.old)}{note}"))
            case DiffChange.CHANGED:
                lines.append(
                    Line("~", f"{entry.path}: {value(entry.old)} -> {value(entry.new)}{note}")
                )
            case _:
                assert_never(entry.change)
    return lines


def request_lines(action: Action) -> list[Line]:
    """Request keys added, removed and changed (the first few of each, then a count)."""
    changes = action.request_changes
    if changes is None:
        return []
    lines = [
        Line(
            " ",
            f"requests: {changes.added} added, {changes.removed} removed, "
            f"{changes.changed} changed, {changes.unchanged} unchanged",
        )
    ]
    for sign, keys, total in (
        ("+", changes.added_keys, changes.added),
        ("-", changes.removed_keys, changes.removed),
        ("~", changes.changed_keys, changes.changed),
    ):
        if keys:
            more = f" (+{total - len(keys)} more)" if total > len(keys) else ""
            lines.append(Line(sign, "key " + ", ".join(keys) + more))
    return lines


def body_lines(action: Action) -> list[Line]:
    """Everything shown under an action's heading, in order."""
    lines: list[Line] = []
    if action.detail:
        lines.append(Line(" ", action.detail))
    lines.extend(diff_lines(action))
    lines.extend(request_lines(action))
    work = workload_line(action)
    if work:
        lines.append(Line(" ", work))
    return lines


def shown(plan: Plan) -> list[Action]:
    """Actions worth showing: every change and refresh, and no-ops that report something."""
    return [a for a in plan.actions if a.kind is not ActionKind.NOOP or a.reason.is_report]
