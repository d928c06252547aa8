"""Plan -> Terraform-like terminal text. Pure: the caller decides colour (TTY, NO_COLOR)."""

from __future__ import annotations

from typing import assert_never

from reconciler.plan.actions import ActionKind, Plan
from reconciler.render._words import (
    CLEANUP_HEADING,
    admission_line,
    body_lines,
    cleanup_lines,
    cost_line,
    headline,
    plan_line,
    shown,
)

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RED = "\033[31m"
_GREEN = "\033[32m"
_YELLOW = "\033[33m"
_MAGENTA = "\033[35m"
_CYAN = "\033[36m"


def _kind_colour(kind: ActionKind) -> str:
    match kind:
        case ActionKind.CREATE | ActionKind.RESUBMIT | ActionKind.RECREATE:
            return _GREEN
        case ActionKind.ADOPT | ActionKind.REFRESH | ActionKind.COLLECT:
            return _CYAN
        case ActionKind.UPDATE:
            return _YELLOW
        case ActionKind.REPLACE:
            return _MAGENTA
        case ActionKind.CANCEL | ActionKind.FORGET:
            return _RED
        case ActionKind.NOOP:
            return _DIM
        case _:
            assert_never(kind)


_SIGN_COLOUR = {"+": _GREEN, "-": _RED, "~": _YELLOW, " ": ""}


def render_text(plan: Plan, *, color: bool = False) -> str:
    """The plan as the `plan` command prints it: one block per action, then totals and cost."""

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color and code else text

    out: list[str] = []
    actions = shown(plan)
    if plan.refresh_only:
        out.append("Refresh-only plan: jobs are only adopted, refreshed and collected.")
        out.append("")
    if plan.targets:
        out.append(f"Restricted to: {', '.join(plan.targets)}")
        out.append("")
    if actions:
        out.append("reconciler will perform the following actions:")
        out.append("")
    for action in actions:
        colour = _kind_colour(action.kind)
        out.append(paint(_DIM, f"  # {headline(action)}"))
        symbol = action.kind.symbol.rjust(3)
        out.append(f"{paint(colour, symbol)} {paint(_BOLD, action.resource)}")
        for line in body_lines(action):
            out.append(f"      {paint(_SIGN_COLOUR[line.sign], line.sign)} {line.text}".rstrip())
        out.append("")
    if plan.cleanup:
        out.append(CLEANUP_HEADING)
        out.extend(paint(_RED, f"  - {line}") for line in cleanup_lines(plan))
        out.append("")
    out.append(paint(_BOLD, plan_line(plan)))
    if plan.summary.jobs or plan.summary.unpriced_models:
        out.append(cost_line(plan))
    fits = admission_line(plan)
    if fits:
        out.append(fits)
    if plan.violations:
        out.append("")
        out.append(paint(_RED + _BOLD, "Guardrail violations (apply will refuse this plan):"))
        for v in plan.violations:
            where = f" [{v.resource}]" if v.resource else ""
            out.append(paint(_RED, f"  x {v.guardrail.value}{where}: {v.message}"))
    return "\n".join(out) + "\n"
