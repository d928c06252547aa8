"""Admission of job-creating actions under the service's quotas, round by round.

Each round (apply's first pass, then every converge round) the creates that fit the free
capacity -- the declared `guardrails.max_concurrent_jobs` less the jobs the service shows
pending or running, ours or not, and each model's enqueued-token limit (`limits:`) less the
estimated tokens of our jobs of that model still open -- start; the rest wait in the queue for a
later round (`--wait`) or the next apply (`--no-wait`). A create the service refuses for
capacity (429) or that fails transiently waits in the queue too instead of failing its
resource. Only resources the user approved (in the plan being applied) ever enter the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.apply.context import ApplyContext
from reconciler.apply.events import EventKind
from reconciler.apply.storage import StorageFull
from reconciler.errors import ReconcilerError, TransientServiceError
from reconciler.live.snapshot import Live
from reconciler.plan.actions import Action
from reconciler.plan.admission import (
    TokenBudget,
    admission_order,
    admit,
    cancelled_by,
    running_jobs,
    token_budget,
)
from reconciler.plan.limits import model_key, resolve_limits

MAX_TRANSIENT_ROUNDS = 6
"""Rounds a resource may fail transiently (after the adapter's own retries) before it fails."""


@dataclass
class CapacityQueue:
    """The approved creates waiting for capacity, and what the service taught about its limit."""

    queued: set[str] = field(default_factory=set)
    """Resources whose approved job-creating action has not run yet."""
    learned_limit: int | None = None
    """The service's own limit, when it refused a create below the declared one."""
    refused: bool = False
    """A create was refused for capacity since the last round."""
    transient: dict[str, int] = field(default_factory=dict)
    """Per resource, rounds that ended in a transient failure."""
    learned_tokens: dict[str, int] = field(default_factory=dict)
    """Per model, the service's enqueued-token limit where it refused a create below ours
    (other projects' jobs, whose size it does not show, share the quota)."""
    refused_models: set[str] = field(default_factory=set)
    """Models a create was refused for enqueued tokens since the last round."""

    def limit(self, context: ApplyContext) -> int:
        declared = context.project.config.guardrails.max_concurrent_jobs
        return min(declared, self.learned_limit) if self.learned_limit else declared

    def take(self, context: ApplyContext, actions: Sequence[Action], live: Live) -> list[Action]:
        """The actions to run this round, in plan order: every one that creates no job, and
        the job-creating ones that fit; the others (queued) wait, and are said to."""
        cancelled = cancelled_by(actions)
        running = running_jobs(live, cancelled)
        if self.refused:
            # The service refused at fewer jobs than declared: its limit is what runs now.
            self.learned_limit = max(1, min(running, self.learned_limit or running))
            self.refused = False
        limit = self.limit(context)
        tokens = self._tokens(context, actions, live)
        ordered = admission_order(
            (a for a in actions if a.resource not in context.report.failures),
            context.desired.resources,
        )
        admitted, waiting = admit(ordered, max(0, limit - running), limit, tokens)
        self.queued = {a.resource for a in waiting}
        if waiting:
            jobs = sum(max(1, a.jobs) for a in waiting)
            held = sorted({model_key(a.model or "") for a in waiting} & set(tokens.limits))
            used = "; ".join(
                f"{m}: ~{tokens.used.get(m, 0):,} of {tokens.limits[m]:,} enqueued tokens"
                for m in held
            )
            context.emit(
                EventKind.PROGRESS,
                None,
                f"{running} of {limit} concurrent job(s) in use"
                + (f"; {used}" if used else "")
                + f"; {jobs} job(s) of {len(waiting)} resource(s) wait for capacity",
            )
        keep = {a.resource for a in admitted}
        return [a for a in actions if not a.kind.creates_job or a.resource in keep]

    def _tokens(self, context: ApplyContext, actions: Sequence[Action], live: Live) -> TokenBudget:
        """This round's token budget: ours still open, against the declared or learned limits."""
        budget = token_budget(
            actions,
            live,
            context.store.state,
            resolve_limits(context.project.config),
            context.desired.resources,
        )
        for model in self.refused_models:
            # Refused with fewer tokens enqueued than declared: what is enqueued now is its limit.
            used = budget.used.get(model, 0)
            self.learned_tokens[model] = max(1, min(used, self.learned_tokens.get(model, used)))
        self.refused_models.clear()
        caps = dict(budget.limits)
        for model, learned in self.learned_tokens.items():
            caps[model] = min(caps.get(model, learned), learned)
        return TokenBudget(used=budget.used, limits=caps)

    def retry_later(self, context: ApplyContext, action: Action, error: ReconcilerError) -> bool:
        """Whether `error` of `action` waits for a later round instead of failing its resource:
        a create refused for capacity always does; with `--wait`, any transient failure does,
        for up to `MAX_TRANSIENT_ROUNDS` rounds."""
        if not isinstance(error, TransientServiceError):
            return False
        at_capacity = error.status_code == 429 and action.kind.creates_job
        if not at_capacity:
            if not context.options.wait:
                return False
            rounds = self.transient.get(action.resource, 0) + 1
            self.transient[action.resource] = rounds
            if rounds > MAX_TRANSIENT_ROUNDS:
                return False
        if action.kind.creates_job:
            self.queued.add(action.resource)
            # The service words which quota refused: storage and enqueued tokens say so.
            wording = str(error).lower()
            if isinstance(error, StorageFull) or "storage" in wording:
                pass  # Files storage frees as collected inputs are deleted (apply.cleanup)
            elif at_capacity and "token" in wording:
                self.refused_models.add(model_key(action.model or ""))
            else:
                self.refused = self.refused or at_capacity
        later = "in a later round" if context.options.wait else "by the next apply"
        context.emit(EventKind.WARNING, action.resource, f"{error}; retried {later}")
        return True
