"""Plan -> the stable, versioned JSON document of `plan --format json`, and its JSON Schema.

The document is a public contract separate from the plan file (plan.planfile): tools may parse it,
so fields are only added, and `format_version` moves when one changes meaning. The schema is
generated from the pydantic models below and published as schemas/plan.schema.json; a test keeps
the file current.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer

from reconciler.field_docs import DocumentedSchema
from reconciler.plan.actions import (
    Action,
    ActionKind,
    DiffChange,
    Guardrail,
    Plan,
    Reason,
)
from reconciler.plan.cost import round_usd
from reconciler.render._words import headline, plan_line
from reconciler.state.document import AttemptPurpose

JSON_FORMAT_VERSION = 1
SCHEMA_ID = "https://reconciler.dev/schemas/plan.schema.json"


Usd = Annotated[float, PlainSerializer(round_usd, return_type=float)]
"""A dollar figure, written rounded (`plan.cost.round_usd`)."""


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DiffDocument(_Doc):
    path: str
    """Dotted path of the field, e.g. `source.sha256` or `labels.team`."""
    change: DiffChange
    old: JsonValue = None
    """Value recorded in the state (null when added)."""
    new: JsonValue = None
    """Desired value (null when removed)."""
    forces_replacement: bool
    """True when this change makes a new batch job."""


class RequestChangesDocument(_Doc):
    added: int
    removed: int
    changed: int
    unchanged: int
    added_keys: list[str]
    """The first few added keys; `added` is the full count."""
    removed_keys: list[str]
    changed_keys: list[str]


class StateRef(_Doc):
    lineage: str
    serial: int


class ActionDocument(_Doc):
    kind: ActionKind
    """What apply does to the resource."""
    symbol: str
    """The marker the text renderer prints for this kind."""
    resource: str
    reason: Reason
    """Why the action was planned (a closed set of values)."""
    summary: str
    """One human sentence: `<resource> will be <kind> because <reason>`."""
    detail: str
    diff: list[DiffDocument]
    request_changes: RequestChangesDocument | None
    job_names: list[str]
    """Live jobs the action concerns (refresh, collect, adopt, cancel)."""
    attempt: int | None
    next_attempt: int | None
    shards: list[int] = Field(
        deprecated="read `shards_to_create` or `shards_given_up`, which say what they are"
    )
    """Deprecated: whichever of `shards_to_create` and `shards_given_up` is set (the two
    meanings this one field had, told apart only by `kind`). Kept so older readers still work."""
    shards_to_create: list[int]
    """Job-creating kinds: the shards of `next_attempt` it runs again alone (failed, gone or
    lost); empty: every shard. Empty for the other kinds."""
    shards_given_up: list[int]
    """A collect: the shards given up (policy will not run them again), whose requests are
    recorded as failed while the other shards' results are collected. Empty otherwise."""
    purpose: AttemptPurpose | None
    cancel_first: bool
    model: str | None
    jobs: int
    """Jobs it would create."""
    requests: int
    reused_requests: int
    bytes: int
    estimated_input_tokens: int
    estimated_cost_usd: Usd | None
    """Batch-price input cost estimate; null when the model has no known price."""
    max_output_tokens: int | None = None
    """At most this many output tokens (thinking included), from the requests'
    `generationConfig.maxOutputTokens`; null when a request sets none (or no job is created)."""
    max_output_cost_usd: Usd | None = None
    """Batch-price cost of `max_output_tokens`; null when unbounded or unpriced."""
    input_tokens_counted: bool = False
    """`estimated_input_tokens` was counted with the SDK's local tokenizer; false: bytes/4."""


class SummaryDocument(_Doc):
    counts: dict[str, int]
    """Actions per kind; every kind is present."""
    has_changes: bool
    """What `--detailed-exitcode` reports as 2."""
    text: str
    """The "Plan: ..." sentence."""
    jobs: int
    requests: int
    reused_requests: int
    bytes: int
    estimated_input_tokens: int
    estimated_cost_usd: Usd
    unpriced_models: list[str]
    price_table_as_of: str
    is_estimate: bool
    """Always true today: input tokens come from bytes/4; output is a bound, not priced in
    `estimated_cost_usd`."""
    max_output_tokens: int | None = None
    """Sum of the job-creating actions' output bounds; null when one is unbounded."""
    max_output_cost_usd: Usd | None = None
    """What that output would cost at most, beyond `estimated_cost_usd`; null when unbounded or
    a model is unpriced."""


class ViolationDocument(_Doc):
    guardrail: Guardrail
    message: str
    resource: str | None


class CleanupDocument(_Doc):
    """A service file apply deletes that an earlier run left (collected, not recorded as
    deleted)."""

    resource: str
    attempt: int
    file_name: str
    role: Literal["input", "results", "media"]


class PlanDocument(_Doc):
    """A reconciler plan (`reconciler plan --format json`)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="reconciler plan",
        json_schema_extra={"$id": SCHEMA_ID},
    )

    format_version: Literal[1]
    """Version of this document's shape."""
    created_at: datetime
    state: StateRef
    """The state the plan was made against."""
    manifests_sha256: str
    targets: list[str]
    force_replace: list[str]
    refresh_only: bool
    actions: list[ActionDocument]
    """One per resource in scope, sorted by resource name (no-ops included)."""
    summary: SummaryDocument
    violations: list[ViolationDocument]
    cleanup: list[CleanupDocument] = []
    """Service files apply deletes besides its actions' (`summary.has_changes` counts them)."""


def _action(action: Action) -> ActionDocument:
    changes = action.request_changes
    return ActionDocument(
        kind=action.kind,
        symbol=action.kind.symbol,
        resource=action.resource,
        reason=action.reason,
        summary=headline(action),
        detail=action.detail,
        diff=[
            DiffDocument(
                path=e.path,
                change=e.change,
                old=e.old,
                new=e.new,
                forces_replacement=e.forces_replacement,
            )
            for e in action.diff
        ],
        request_changes=None
        if changes is None
        else RequestChangesDocument(
            added=changes.added,
            removed=changes.removed,
            changed=changes.changed,
            unchanged=changes.unchanged,
            added_keys=list(changes.added_keys),
            removed_keys=list(changes.removed_keys),
            changed_keys=list(changes.changed_keys),
        ),
        job_names=list(action.job_names),
        attempt=action.attempt,
        next_attempt=action.next_attempt,
        shards=list(action.shards_to_create or action.shards_given_up),
        shards_to_create=list(action.shards_to_create),
        shards_given_up=list(action.shards_given_up),
        purpose=action.purpose,
        cancel_first=action.cancel_first,
        model=action.model,
        jobs=action.jobs,
        requests=action.requests,
        reused_requests=action.reused_requests,
        bytes=action.bytes,
        estimated_input_tokens=action.estimated_input_tokens,
        estimated_cost_usd=action.estimated_cost_usd,
        max_output_tokens=action.max_output_tokens,
        max_output_cost_usd=action.max_output_cost_usd,
        input_tokens_counted=action.input_tokens_counted,
    )


def plan_document(plan: Plan) -> PlanDocument:
    """The public JSON model of `plan`."""
    s = plan.summary
    return PlanDocument(
        format_version=JSON_FORMAT_VERSION,
        created_at=plan.created_at,
        state=StateRef(lineage=plan.state_lineage, serial=plan.state_serial),
        manifests_sha256=plan.manifests_sha256,
        targets=list(plan.targets),
        force_replace=list(plan.force_replace),
        refresh_only=plan.refresh_only,
        actions=[_action(a) for a in plan.actions],
        summary=SummaryDocument(
            counts={kind.value: s.counts.get(kind, 0) for kind in ActionKind},
            has_changes=plan.has_changes,
            text=plan_line(plan),
            jobs=s.jobs,
            requests=s.requests,
            reused_requests=s.reused_requests,
            bytes=s.bytes,
            estimated_input_tokens=s.estimated_input_tokens,
            estimated_cost_usd=s.estimated_cost_usd,
            unpriced_models=list(s.unpriced_models),
            price_table_as_of=s.price_table_as_of,
            is_estimate=s.is_estimate,
            max_output_tokens=s.max_output_tokens,
            max_output_cost_usd=s.max_output_cost_usd,
        ),
        violations=[
            ViolationDocument(guardrail=v.guardrail, message=v.message, resource=v.resource)
            for v in plan.violations
        ],
        cleanup=[
            CleanupDocument(
                resource=c.resource, attempt=c.attempt, file_name=c.file_name, role=c.role.value
            )
            for c in plan.cleanup
        ],
    )


def render_json(plan: Plan) -> str:
    """The plan as a JSON document (indented, keys in model order, newline-terminated)."""
    return plan_document(plan).model_dump_json(indent=2) + "\n"


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the document `render_json` writes."""
    schema = PlanDocument.model_json_schema(mode="serialization", schema_generator=DocumentedSchema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def plan_schema_text() -> str:
    """The schema as the text of schemas/plan.schema.json."""
    return json.dumps(plan_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
