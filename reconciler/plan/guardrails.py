"""Guardrails from reconciler.yaml checked against a plan: cost, models, job size, tokens.

Violations are data recorded in the Plan (so `plan` can show all of them at once); apply and
`plan` refuse through `raise_for_violations`.
"""

from __future__ import annotations

import math

from reconciler.config import Guardrails
from reconciler.errors import PlanError
from reconciler.plan.actions import Action, Guardrail, Plan, Summary, Violation
from reconciler.plan.limits import ServiceLimits


def _model_id(model: str) -> str:
    return model.removeprefix("models/")


def _cost(summary: Summary, guardrails: Guardrails) -> list[Violation]:
    limit = guardrails.max_estimated_cost_usd
    if limit is None or summary.estimated_cost_usd <= limit:
        return []
    return [
        Violation(
            Guardrail.MAX_ESTIMATED_COST,
            f"estimated cost ${summary.estimated_cost_usd:.2f} exceeds "
            f"max_estimated_cost_usd ${limit:.2f}",
        )
    ]


def _models(creating: list[Action], guardrails: Guardrails) -> list[Violation]:
    if guardrails.allowed_models is None:
        return []
    allowed = {_model_id(m) for m in guardrails.allowed_models}
    return [
        Violation(
            Guardrail.ALLOWED_MODELS,
            f"model {action.model} is not in allowed_models "
            f"({', '.join(sorted(allowed)) or 'none'})",
            action.resource,
        )
        for action in creating
        if action.model is not None and _model_id(action.model) not in allowed
    ]


def _requests_per_job(creating: list[Action], guardrails: Guardrails) -> list[Violation]:
    per_job = guardrails.max_requests_per_job
    if per_job is None:
        return []
    violations: list[Violation] = []
    for action in creating:
        largest = math.ceil(action.requests / action.jobs) if action.jobs else 0
        if largest > per_job:
            violations.append(
                Violation(
                    Guardrail.MAX_REQUESTS_PER_JOB,
                    f"a job would carry {largest} requests, more than "
                    f"max_requests_per_job {per_job}",
                    action.resource,
                )
            )
    return violations


def _job_tokens(creating: list[Action], limits: ServiceLimits | None) -> list[Violation]:
    """A job whose own input exceeds its model's enqueued-token limit never starts: the
    service refuses it however long apply waits."""
    if limits is None:
        return []
    violations: list[Violation] = []
    for action in creating:
        cap = limits.token_limit(action.model) if action.model else None
        largest = math.ceil(action.estimated_input_tokens / max(1, action.jobs))
        if cap is not None and largest > cap:
            violations.append(
                Violation(
                    Guardrail.MAX_ENQUEUED_TOKENS,
                    f"a job of about {largest:,} input tokens exceeds the enqueued-token limit "
                    f"of {_model_id(action.model or '')} ({cap:,}); shard the input "
                    "(`spec.shards.max_requests` or `max_bytes`) so each job fits, or raise "
                    "`limits.enqueued_tokens` / `limits.tier` in reconciler.yaml",
                    action.resource,
                )
            )
    return violations


def evaluate_guardrails(
    actions: tuple[Action, ...],
    summary: Summary,
    guardrails: Guardrails,
    limits: ServiceLimits | None = None,
) -> tuple[Violation, ...]:
    """Every guardrail the plan would break, in a stable order (one check per guardrail).

    The concurrent-job and enqueued-token limits are no violation as such: apply admits the
    jobs past them in waves (plan.admission). Only a job that could never fit is one.
    """
    creating = [a for a in actions if a.kind.creates_job]
    return (
        *_cost(summary, guardrails),
        *_models(creating, guardrails),
        *_requests_per_job(creating, guardrails),
        *_job_tokens(creating, limits),
    )


def raise_for_violations(plan: Plan) -> None:
    """Raise PlanError naming every guardrail the plan breaks; return if it breaks none.

    Raises:
        PlanError: one line per violation, with a hint at where the guardrails live.
    """
    if not plan.violations:
        return
    lines = [
        f"{v.guardrail.value}: {v.message}" + (f" (resource {v.resource})" if v.resource else "")
        for v in plan.violations
    ]
    raise PlanError(
        f"plan refused by {len(lines)} guardrail violation(s): " + "; ".join(lines),
        hint="change the manifests, or the `guardrails:` or `limits:` section of reconciler.yaml",
    )
