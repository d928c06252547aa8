"""Guardrails from reconciler.yaml checked against a plan: cost, models, job size, tokens.

Violations are data recorded in the Plan (so `plan` can show all of them at once); apply and
`plan` refuse through `raise_for_violations`.
"""

from __future__ import annotations

import math
from collections import defaultdict

from reconciler.config import Guardrails
from reconciler.errors import PlanError
from reconciler.live.snapshot import Live, LiveJob
from reconciler.plan.actions import Action, Guardrail, Plan, Summary, Violation
from reconciler.plan.admission import cancelled_by
from reconciler.plan.cost import estimate_tokens
from reconciler.state.document import State


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


def _enqueued_tokens(
    creating: list[Action], running: list[LiveJob], state: State, guardrails: Guardrails
) -> list[Violation]:
    if not guardrails.max_enqueued_tokens:
        return []
    enqueued: defaultdict[str, int] = defaultdict(int)
    running_names = {j.name for j in running}
    for record in state.resources.values():
        jobs = {a.job_name for a in record.attempts if a.job_name in running_names}
        if jobs and record.input is not None:
            model = record.replacing.get("model")
            if isinstance(model, str):
                enqueued[_model_id(model)] += estimate_tokens(record.input.bytes)
    for action in creating:
        if action.model is not None:
            enqueued[_model_id(action.model)] += action.estimated_input_tokens
    violations: list[Violation] = []
    for model, cap in sorted(guardrails.max_enqueued_tokens.items()):
        tokens = enqueued.get(_model_id(model), 0)
        if tokens > cap:
            violations.append(
                Violation(
                    Guardrail.MAX_ENQUEUED_TOKENS,
                    f"about {tokens} input tokens would be enqueued for {model}, more than "
                    f"max_enqueued_tokens {cap}",
                )
            )
    return violations


def evaluate_guardrails(
    actions: tuple[Action, ...],
    summary: Summary,
    state: State,
    live: Live,
    guardrails: Guardrails,
) -> tuple[Violation, ...]:
    """Every guardrail the plan would break, in a stable order (one check per guardrail)."""
    creating = [a for a in actions if a.kind.creates_job]
    # Enqueued tokens are counted per project, so every unfinished job counts, ours or not,
    # minus what this plan cancels before it creates. (The concurrent-job limit is no
    # violation: apply admits the jobs past it in waves -- plan.admission.)
    cancelled = cancelled_by(actions)
    running = [j for j in live.jobs.values() if not j.state.is_terminal and j.name not in cancelled]
    return (
        *_cost(summary, guardrails),
        *_models(creating, guardrails),
        *_requests_per_job(creating, guardrails),
        *_enqueued_tokens(creating, running, state, guardrails),
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
        hint="change the manifests, or the `guardrails:` section of reconciler.yaml",
    )
