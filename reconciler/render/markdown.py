"""Plan -> GitHub Markdown for pull requests (comment or step summary), within GitHub's limit.

GitHub refuses comments and step summaries over 65,536 characters, so sections are added while
they fit and the rest is replaced by a note that says how many resources were left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import assert_never

from reconciler.plan.actions import Action, ActionKind, DiffChange, Plan
from reconciler.render._words import (
    CLEANUP_HEADING,
    about,
    admission_line,
    cleanup_lines,
    cost_line,
    headline,
    money,
    plan_line,
    request_lines,
    shown,
    size,
    value,
    workload_line,
)
from reconciler.render.spend import ResourceCost

GITHUB_MAX_CHARS = 65_536
MAX_LINES_PER_RESOURCE = 300
"""A single resource's diff is cut after this many lines, so one huge change cannot crowd out
every other resource."""

_FOOTER_RESERVE = 400


def _fence(body: str) -> str:
    """A code fence longer than any backtick run inside `body` (values are user text)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)


def _diff_block_lines(action: Action) -> list[str]:
    """The body as ```diff lines: only "+" and "-" are coloured there, so a change is a pair."""
    lines: list[str] = [f"# {action.detail}"] if action.detail else []
    for entry in action.diff:
        note = "  # forces replacement" if entry.forces_replacement else ""
        match entry.change:
            case DiffChange.ADDED:
                lines.append(f"+ {entry.path}: {value(entry.new)}{note}")
            case DiffChange.REMOVED:
                lines.append(f"- {entry.path}: {value(entry.old)}{note}")
            case DiffChange.CHANGED:
                lines.append(f"- {entry.path}: {value(entry.old)}")
                lines.append(f"+ {entry.path}: {value(entry.new)}{note}")
            case _:
                assert_never(entry.change)
    for line in request_lines(action):
        sign = "!" if line.sign == "~" else ("#" if line.sign == " " else line.sign)
        lines.append(f"{sign} {line.text}")
    work = workload_line(action)
    if work:
        lines.append(f"# {work}")
    return lines


def _section(action: Action) -> str:
    rendered = _diff_block_lines(action)
    cut = len(rendered) - MAX_LINES_PER_RESOURCE
    if cut > 0:
        rendered = rendered[:MAX_LINES_PER_RESOURCE]
        rendered.append(f"# ... {cut} more line(s) not shown")
    body = "\n".join(rendered)
    fence = _fence(body)
    summary = (
        f"<code>{html.escape(action.kind.symbol.strip() or '=')}</code> "
        f"<b>{html.escape(action.resource)}</b> "
        f"{html.escape(headline(action).removeprefix(action.resource).strip())}"
    )
    inner = f"\n\n{fence}diff\n{body}\n{fence}\n" if body else "\n"
    return f"<details><summary>{summary}</summary>{inner}\n</details>\n"


def _table(plan: Plan) -> str:
    rows = ["| Action | Resources |", "|---|---:|"]
    for kind, n in plan.summary.counts.items():
        if n and kind is not ActionKind.NOOP:
            rows.append(f"| `{kind.symbol.strip()}` {kind.value} | {n} |")
    unchanged = plan.summary.counts.get(ActionKind.NOOP, 0)
    if unchanged:
        rows.append(f"| unchanged | {unchanged} |")
    s = plan.summary
    if s.jobs:
        reused = f" ({s.reused_requests:,} reused)" if s.reused_requests else ""
        rows.append(f"| **jobs to create** | {s.jobs} |")
        rows.append(f"| **requests to run** | {s.requests:,}{reused} |")
        rows.append(f"| **input** | {size(s.bytes)}, ~{s.estimated_input_tokens:,} tokens |")
    return "\n".join(rows) + "\n"


def _spend_table(costs: Mapping[str, ResourceCost]) -> list[str]:
    """Estimate vs actual for the resources whose results were collected with their usage."""
    collected = {name: cost for name, cost in sorted(costs.items()) if cost.actual is not None}
    if not collected:
        return []
    rows = [
        "### Cost: estimate vs actual",
        "",
        "| Resource | Estimated (input only) | Actual | Tokens |",
        "|---|---:|---:|---|",
    ]
    for name, cost in collected.items():
        estimate = "-" if cost.estimated_cost_usd is None else about(cost.estimated_cost_usd)
        actual = "unpriced" if cost.actual_cost_usd is None else money(cost.actual_cost_usd)
        rows.append(f"| `{html.escape(name)}` | {estimate} | {actual} | {cost.tokens_phrase()} |")
    rows += [
        "",
        "_Actual: the collected results' `usageMetadata` at batch price; estimate: a full run "
        "of the current spec, input tokens as bytes/4._",
        "",
    ]
    return rows


_CLEANUP_SHOWN = 20
"""Deletions listed in a comment at most (the rest counted): the comment has a size limit."""


def render_markdown(
    plan: Plan,
    *,
    max_chars: int = GITHUB_MAX_CHARS,
    costs: Mapping[str, ResourceCost] | None = None,
) -> str:
    """The plan for a PR: heading, totals table, cost (with `costs`: estimate vs actual per
    resource collected so far), then one collapsible block per resource."""
    head: list[str] = ["## reconciler plan", "", f"**{plan_line(plan)}**", ""]
    if plan.refresh_only:
        head += ["_Refresh-only plan: jobs are only adopted, refreshed and collected._", ""]
    if plan.targets:
        head += [f"_Restricted to: {', '.join(plan.targets)}_", ""]
    head.append(_table(plan))
    if plan.summary.jobs or plan.summary.unpriced_models:
        head += [cost_line(plan), ""]
    head += _spend_table(costs or {})
    fits = admission_line(plan)
    if fits:
        head += [fits, ""]
    if plan.cleanup:
        head += [f"_{CLEANUP_HEADING}_", ""]
        head += [f"- {html.escape(line)}" for line in cleanup_lines(plan)[:_CLEANUP_SHOWN]]
        if len(plan.cleanup) > _CLEANUP_SHOWN:
            head.append(f"- … and {len(plan.cleanup) - _CLEANUP_SHOWN} more")
        head.append("")
    if plan.violations:
        head += ["### Guardrail violations", "", "Apply will refuse this plan:", ""]
        for v in plan.violations:
            where = f" (`{v.resource}`)" if v.resource else ""
            head.append(f"- **{v.guardrail.value}**{where}: {html.escape(v.message)}")
        head.append("")
    text = "\n".join(head)
    actions = shown(plan)
    if actions:
        text += "\n### Resources\n\n"
    budget = max_chars - _FOOTER_RESERVE
    for index, action in enumerate(actions):
        section = _section(action)
        if len(text) + len(section) > budget:
            left = len(actions) - index
            text += (
                f"\n> **Output truncated:** {left} more resource(s) not shown to stay within "
                f"GitHub's {GITHUB_MAX_CHARS:,}-character limit. Run `reconciler plan` for the "
                "full plan.\n"
            )
            break
        text += section
    created = plan.created_at.isoformat()
    text += (
        f"\n<sub>State lineage `{plan.state_lineage}` serial {plan.state_serial} · "
        f"planned {created}</sub>\n"
    )
    return text
