"""The plan's values: an Action (kind + reason + field diff), the plan-wide Summary and Admission,
and the frozen Plan with what it was made against.

Every type here is a pydantic dataclass so a Plan can be written to a plan file and read back
unchanged (see plan.planfile) while staying a plain frozen value in process. The kinds and reasons
the values carry are the closed enums of plan.kinds, exported from here too: this module stays the
one import point of the plan's vocabulary.
"""

from __future__ import annotations

import enum
from collections import Counter
from datetime import datetime

from pydantic import JsonValue
from pydantic.dataclasses import dataclass

from reconciler.plan.cleanup import PendingDelete
from reconciler.plan.kinds import ActionKind, Reason
from reconciler.state.document import AttemptPurpose

__all__ = [
    "PLAN_FORMAT_VERSION",
    "Action",
    "ActionKind",
    "Admission",
    "DiffChange",
    "DiffEntry",
    "Guardrail",
    "Plan",
    "Reason",
    "RequestChanges",
    "StorageFit",
    "Summary",
    "TokenFit",
    "Violation",
    "summarise",
]

PLAN_FORMAT_VERSION = 3
"""2: `Action.shards` became `shards_to_create` and `shards_given_up` (plan.planfile reads 1).
3: `Plan.cleanup`, the files apply deletes (a version 2 plan approved none)."""


class DiffChange(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One leaf that differs between what the state recorded and what is desired."""

    path: str
    """Dotted path, e.g. `source.sha256`, `labels.team`, `policy.resubmit[1]`."""
    change: DiffChange
    old: JsonValue = None
    """The recorded value; None when ADDED."""
    new: JsonValue = None
    """The desired value; None when REMOVED."""
    forces_replacement: bool = False
    """True for replacing fields (a new job), False for in-place ones."""


@dataclass(frozen=True, slots=True)
class RequestChanges:
    """Request keys added, removed or changed between the applied source and the desired one."""

    added: int
    removed: int
    changed: int
    unchanged: int
    added_keys: tuple[str, ...] = ()
    """The first few keys of each kind, sorted; the counts are the truth."""
    removed_keys: tuple[str, ...] = ()
    changed_keys: tuple[str, ...] = ()

    @property
    def to_run(self) -> int:
        """Requests an incremental re-run sends: the new and the changed ones."""
        return self.added + self.changed


@dataclass(frozen=True, slots=True)
class Action:
    """One resource's planned step. The executor dispatches on `kind`; renderers describe it."""

    kind: ActionKind
    resource: str
    reason: Reason
    detail: str = ""
    """One human sentence with the specifics (job name, end state, why not resubmitted)."""
    diff: tuple[DiffEntry, ...] = ()
    """Recorded vs desired fields. Every action on a desired resource also brings the in-place
    fields up to date when applied, so the diff shows them even when the kind is not UPDATE."""
    request_changes: RequestChanges | None = None
    job_names: tuple[str, ...] = ()
    """Live jobs it concerns: to refresh, collect, adopt or cancel (REPLACE: the one to cancel;
    UPDATE: the pending or running ones whose priority changes)."""
    attempt: int | None = None
    """The recorded attempt it concerns (refresh/collect/adopt/the failed one), if any."""
    next_attempt: int | None = None
    """The attempt number a job-creating action records its intent under."""
    shards_to_create: tuple[int, ...] = ()
    """Job-creating actions on a sharded attempt: the shards of `next_attempt` to (re)create
    alone -- the failed, gone or lost ones -- while the others keep their jobs. Empty: create
    every shard the input splits into. Always empty for kinds that create no job."""
    shards_given_up: tuple[int, ...] = ()
    """COLLECT only: the shards that ended badly for good (policy will not run them again); their
    requests are recorded as failed while the other shards' results are collected. Empty: every
    shard of `attempt` is collected or recorded as it ended."""
    purpose: AttemptPurpose | None = None
    """For job-creating actions: full run, retry of failed requests, or incremental re-run."""
    cancel_first: bool = False
    """REPLACE only: the old job still runs and is cancelled before the new one is created."""
    model: str | None = None
    jobs: int = 0
    """How many jobs it would create (more than one when the input is sharded)."""
    requests: int = 0
    """Requests it would send to the service."""
    reused_requests: int = 0
    """Requests whose previous results are kept instead of run again (rerun: changed)."""
    bytes: int = 0
    """Input bytes it would send (estimated in proportion for partial runs)."""
    estimated_input_tokens: int = 0
    estimated_cost_usd: float | None = None
    """Batch-price input cost of what it would run; None when the model has no known price."""
    max_output_tokens: int | None = None
    """Job-creating actions: at most this many output tokens (thinking included), from the
    requests' `generationConfig.maxOutputTokens`; None when a request sets none."""
    max_output_cost_usd: float | None = None
    """Batch-price cost of `max_output_tokens`; None when unbounded or the model is unpriced."""
    input_tokens_counted: bool = False
    """`estimated_input_tokens` was counted with the SDK's local tokenizer before planning;
    False: estimated as bytes/4."""

    @property
    def job_name(self) -> str | None:
        """The first live job it concerns, for the common one-job case."""
        return self.job_names[0] if self.job_names else None


class Guardrail(enum.StrEnum):
    """Which `guardrails` setting of reconciler.yaml a violation comes from."""

    MAX_ESTIMATED_COST = "max_estimated_cost_usd"
    ALLOWED_MODELS = "allowed_models"
    MAX_REQUESTS_PER_JOB = "max_requests_per_job"
    MAX_ENQUEUED_TOKENS = "max_enqueued_tokens"


@dataclass(frozen=True, slots=True)
class Violation:
    guardrail: Guardrail
    message: str
    resource: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over the plan; token and cost figures are estimates (bytes/4, batch input price)."""

    counts: dict[ActionKind, int]
    """Actions per kind, every kind present (zero included) so consumers need no defaults."""
    jobs: int
    requests: int
    reused_requests: int
    bytes: int
    estimated_input_tokens: int
    estimated_cost_usd: float
    """Sum over priced actions; see `unpriced_models` for what it leaves out."""
    unpriced_models: tuple[str, ...]
    price_table_as_of: str
    is_estimate: bool = True
    max_output_tokens: int | None = None
    """Sum of the job-creating actions' output bounds; None when one of them is unbounded."""
    max_output_cost_usd: float | None = None
    """Sum of their costs; None when an output is unbounded or its model unpriced."""
    unbounded_output_requests: bool = False
    """Some job-creating action has requests without `maxOutputTokens`."""
    counted_token_actions: int = 0
    """Job-creating actions whose input tokens were counted by the local tokenizer (the others
    are estimated as bytes/4)."""

    @property
    def has_changes(self) -> bool:
        return any(n for kind, n in self.counts.items() if kind.is_change)


def summarise(actions: tuple[Action, ...], *, price_table_as_of: str) -> Summary:
    """Totals of `actions`: counts per kind and the sums of what job-creating actions would run."""
    counts: Counter[ActionKind] = Counter(a.kind for a in actions)
    running = [a for a in actions if a.kind.creates_job]
    unpriced = sorted({a.model for a in running if a.estimated_cost_usd is None and a.model})
    unbounded = any(a.max_output_tokens is None for a in running)
    return Summary(
        counts={kind: counts.get(kind, 0) for kind in ActionKind},
        jobs=sum(a.jobs for a in running),
        requests=sum(a.requests for a in running),
        reused_requests=sum(a.reused_requests for a in running),
        bytes=sum(a.bytes for a in running),
        estimated_input_tokens=sum(a.estimated_input_tokens for a in running),
        estimated_cost_usd=round(sum(a.estimated_cost_usd or 0.0 for a in running), 6),
        unpriced_models=tuple(unpriced),
        price_table_as_of=price_table_as_of,
        max_output_tokens=None if unbounded else sum(a.max_output_tokens or 0 for a in running),
        max_output_cost_usd=None
        if unbounded or any(a.max_output_cost_usd is None for a in running)
        else round(sum(a.max_output_cost_usd or 0.0 for a in running), 6),
        unbounded_output_requests=unbounded,
        counted_token_actions=sum(1 for a in running if a.input_tokens_counted),
    )


@dataclass(frozen=True, slots=True)
class TokenFit:
    """Estimated enqueued input tokens of one model against its limit (for display)."""

    model: str
    limit: int
    """The model's enqueued-token limit (plan.limits)."""
    enqueued: int
    """Tokens of this project's jobs of the model pending or running when planned."""
    start_now: int
    """Tokens of the model's new jobs that start now."""
    waiting: int
    """Tokens of the model's new jobs that wait for earlier jobs to end."""


@dataclass(frozen=True, slots=True)
class StorageFit:
    """The project's Files storage against its limit (for display)."""

    limit: int
    """`limits.storage_bytes` (20 GB by default)."""
    used: int
    """Bytes of the files the service listed when planned."""
    uploading: int
    """Bytes of the input files the plan's new jobs upload (estimated: whole sources)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """How a plan's new jobs fit the limit. For display; apply decides again each round from
    the service's jobs then (`admit`), so nothing here steers it."""

    limit: int
    """The project's declared limit (`guardrails.max_concurrent_jobs`)."""
    running: int
    """Jobs pending or running at the service when planned, less those the plan cancels."""
    start_now: int
    """New jobs that fit now."""
    waiting: int
    """New jobs that wait for capacity: `apply --wait` starts them as jobs end; `--no-wait`
    leaves them to the next apply."""
    waves: int
    """Further waves needed after the first, were every wave to find the service empty."""
    tokens: tuple[TokenFit, ...] = ()
    """Per model with a known limit that new jobs run on, sorted by model: enqueued tokens
    against the limit."""
    storage: StorageFit | None = None
    """Files storage, when the plan uploads inputs and the service's files were listed."""


@dataclass(frozen=True, slots=True)
class Plan:
    """An immutable plan and what it was made against. Apply trusts only the fields that say so."""

    created_at: datetime
    """The record of truth for when the plan was made (passed in; the planner reads no clock)."""
    state_lineage: str
    """Apply refuses the plan against a state of another lineage."""
    state_serial: int
    """Apply refuses the plan if the state has moved on since (serial differs)."""
    manifests_sha256: str
    """Apply refuses the plan if the manifests changed since."""
    actions: tuple[Action, ...]
    """One per resource in scope, sorted by resource name; NOOPs included."""
    summary: Summary
    violations: tuple[Violation, ...] = ()
    """Guardrails the plan breaks; `raise_for_violations` turns them into a PlanError."""
    targets: tuple[str, ...] = ()
    """`--target` names the plan was restricted to (empty: every resource). For display only."""
    force_replace: tuple[str, ...] = ()
    refresh_only: bool = False
    admission: Admission | None = None
    """How the new jobs fit the concurrent-job limit (None: plans made without it). For display
    only: apply admits jobs from the service's state each round."""
    settings_sha256: str = ""
    """Apply refuses the plan if the settings that steer what apply does changed since
    (`planner.settings_sha256`: where it runs, what it deletes, its limits and prices)."""
    cleanup: tuple[PendingDelete, ...] = ()
    """Service files of collected attempts apply deletes, which an earlier run left (killed
    before recording a delete, or a delete that failed): apply deletes these and no others of
    its sweep (plan.cleanup)."""
    format_version: int = PLAN_FORMAT_VERSION

    @property
    def has_changes(self) -> bool:
        """What `--detailed-exitcode` reports as 2: an action that changes something, or a file
        to delete."""
        return self.summary.has_changes or bool(self.cleanup)

    def action_for(self, resource: str) -> Action | None:
        for action in self.actions:
            if action.resource == resource:
                return action
        return None
