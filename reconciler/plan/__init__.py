"""Planning: (desired, state, live) -> an immutable, serialisable Plan. Pure: no I/O, no SDK."""

from reconciler.plan.actions import (
    Action,
    ActionKind,
    DiffChange,
    DiffEntry,
    Guardrail,
    Plan,
    Reason,
    RequestChanges,
    Summary,
    Violation,
)
from reconciler.plan.cost import PriceTable, default_price_table, estimate_tokens
from reconciler.plan.guardrails import raise_for_violations
from reconciler.plan.planfile import check_plan_current, dumps, loads, verified_plan
from reconciler.plan.planner import make_plan, plan_now

__all__ = [
    "Action",
    "ActionKind",
    "DiffChange",
    "DiffEntry",
    "Guardrail",
    "Plan",
    "PriceTable",
    "Reason",
    "RequestChanges",
    "Summary",
    "Violation",
    "check_plan_current",
    "default_price_table",
    "dumps",
    "estimate_tokens",
    "loads",
    "make_plan",
    "plan_now",
    "raise_for_violations",
    "verified_plan",
]
