"""Admission under the service's quotas: which new jobs start now and which wait. Pure.

The service runs at most so many batch jobs per project at once (about 100; the emulator's
`max_concurrent_jobs`) and holds at most so many enqueued input tokens per model (3 M for
gemini-2.5-flash at tier 1: plan.limits); it answers a create past either with 429
RESOURCE_EXHAUSTED. Rather than fail those creates, apply admits them in waves as capacity
frees; `plan` shows how the work fits. The order is the manifest's `priority` (higher
first), then manifest order. Tokens are the plan's estimate (bytes / 4, plan.cost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from reconciler.live.snapshot import Live
from reconciler.manifests.desired import DesiredResource
from reconciler.plan.actions import Action, ActionKind, Admission, StorageFit, TokenFit
from reconciler.plan.cost import estimate_tokens
from reconciler.plan.limits import ServiceLimits, model_key
from reconciler.state.document import JobAttempt, ResourceRecord, State


def running_jobs(live: Live, cancelled: Iterable[str] = ()) -> int:
    """Jobs at the service that hold capacity now (pending or running), except `cancelled`."""
    gone = set(cancelled)
    return sum(
        1 for job in live.jobs.values() if not job.state.is_terminal and job.name not in gone
    )


def cancelled_by(actions: Iterable[Action]) -> set[str]:
    """The jobs these actions cancel (a cancel, or a replace that cancels first)."""
    cancelled: set[str] = set()
    for action in actions:
        if action.kind is ActionKind.CANCEL or (action.kind.is_replace and action.cancel_first):
            cancelled.update(action.job_names)
    return cancelled


def admission_order(
    actions: Iterable[Action], resources: Mapping[str, DesiredResource]
) -> list[Action]:
    """The job-creating actions among `actions`, higher `priority` first, then in
    manifest order (the order `resources` holds them)."""
    position = {name: index for index, name in enumerate(resources)}

    def key(action: Action) -> tuple[int, int, str]:
        resource = resources.get(action.resource)
        priority = resource.manifest.spec.job_priority if resource is not None else None
        return (-(priority or 0), position.get(action.resource, len(position)), action.resource)

    return sorted((a for a in actions if a.kind.creates_job), key=key)


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """Enqueued input tokens per model: what jobs already hold, and each model's limit."""

    used: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per model id: estimated tokens of the jobs pending or running now."""
    limits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per model id: its limit; a model missing here is not limited."""


def token_budget(
    actions: Sequence[Action],
    live: Live,
    state: State,
    limits: ServiceLimits,
    resources: Mapping[str, DesiredResource],
) -> TokenBudget:
    """The budget of the models `actions` create jobs on, with the jobs `live` shows open."""
    models = {model_key(a.model) for a in actions if a.kind.creates_job and a.model}
    caps = {m: cap for m in models if (cap := limits.token_limit(m)) is not None}
    used = enqueued_tokens(live, state, resources, cancelled_by(actions))
    return TokenBudget(used=MappingProxyType(used), limits=MappingProxyType(caps))


def enqueued_tokens(
    live: Live,
    state: State,
    resources: Mapping[str, DesiredResource],
    cancelled: Iterable[str] = (),
) -> dict[str, int]:
    """Per model id, the estimated input tokens of this project's jobs `live` shows pending or
    running (less `cancelled`). Other projects' jobs count against the same quota, but the
    service does not say how large they are: they are left out, and a 429 teaches the rest."""
    gone = set(cancelled)
    open_jobs = {
        job.name: job
        for job in live.jobs.values()
        if not job.state.is_terminal and job.name not in gone
    }
    used: defaultdict[str, int] = defaultdict(int)
    for name, record in state.resources.items():
        for attempt in record.attempts:
            job = open_jobs.get(attempt.job_name or "")
            if job is None:
                continue
            declared = record.replacing.get("model")
            model = attempt.model or job.model or (declared if isinstance(declared, str) else "")
            n_bytes = _attempt_bytes(record, attempt, resources.get(name))
            used[model_key(model)] += estimate_tokens(n_bytes)
    return dict(used)


def _attempt_bytes(
    record: ResourceRecord, attempt: JobAttempt, resource: DesiredResource | None
) -> int:
    """The input bytes one job sent: its shard's, else its share of the recorded input (an
    uploaded file), else of the desired source (inline requests record no upload)."""
    if record.input is not None:
        for shard in record.input.shards:
            if attempt.shard is not None and shard.index == attempt.shard:
                return shard.bytes
        total, count = record.input.bytes, record.input.request_count
    elif resource is not None:
        total, count = resource.source.bytes, resource.source.request_count
    else:
        return 0
    if attempt.request_count is not None and count > 0:
        return total * min(attempt.request_count, count) // count
    return total


def admit(
    ordered: Sequence[Action], free: int, limit: int, tokens: TokenBudget | None = None
) -> tuple[list[Action], list[Action]]:
    """Split `ordered` into the actions whose jobs fit in `free` slots (and, with `tokens`,
    their model's enqueued-token budget) now, and those that wait.

    In order, without overtaking: an action that does not fit the job slots holds back every
    one after it, and one that does not fit its model's tokens holds back the later ones of
    that model, so priority is kept. An action with more jobs than `limit`, or more tokens than
    its model's limit, starts alone (once nothing else holds the slots, or nothing of ours that
    model's tokens), or it would never start.
    """
    admitted: list[Action] = []
    waiting: list[Action] = []
    used = dict(tokens.used) if tokens is not None else {}
    caps = tokens.limits if tokens is not None else {}
    blocked: set[str] = set()
    for index, action in enumerate(ordered):
        needed = min(max(1, action.jobs), limit)
        if needed > free:
            return admitted, waiting + list(ordered[index:])
        model = model_key(action.model or "")
        cap = caps.get(model)
        if model in blocked or (
            cap is not None
            and used.get(model, 0) > 0
            and used.get(model, 0) + action.estimated_input_tokens > cap
        ):
            blocked.add(model)
            waiting.append(action)
            continue
        used[model] = used.get(model, 0) + action.estimated_input_tokens
        admitted.append(action)
        free -= needed
    return admitted, waiting


def _waves(waiting: Sequence[Action], limit: int, limits: Mapping[str, int]) -> int:
    """Waves the waiting actions take, were every wave to find the service empty."""
    rest, waves = list(waiting), 0
    while rest:
        # Each wave admits at least its first action (all is free), so this ends.
        _, rest = admit(rest, limit, limit, TokenBudget(limits=limits))
        waves += 1
    return waves


def plan_admission(
    actions: Sequence[Action],
    live: Live,
    resources: Mapping[str, DesiredResource],
    limit: int,
    tokens: TokenBudget | None = None,
    storage_limit: int | None = None,
) -> Admission:
    """How `actions`' new jobs fit `limit` (and `tokens`) with the jobs `live` shows running,
    and their uploads the Files storage (`storage_limit`, when `live` lists the files)."""
    running = running_jobs(live, cancelled_by(actions))
    ordered = admission_order(actions, resources)
    admitted, waiting = admit(ordered, max(0, limit - running), limit, tokens)
    budget = tokens or TokenBudget()
    return Admission(
        limit=limit,
        running=running,
        start_now=sum(max(1, a.jobs) for a in admitted),
        waiting=sum(max(1, a.jobs) for a in waiting),
        waves=_waves(waiting, limit, budget.limits),
        tokens=_token_fits(admitted, waiting, budget),
        storage=_storage_fit(ordered, live, resources, storage_limit),
    )


def _storage_fit(
    creating: Sequence[Action],
    live: Live,
    resources: Mapping[str, DesiredResource],
    limit: int | None,
) -> StorageFit | None:
    """The service's files and the plan's uploads (file sources) against `limit`."""
    if limit is None or not live.files_listed:
        return None
    uploading = sum(
        a.bytes
        for a in creating
        if (r := resources.get(a.resource)) is not None and r.manifest.spec.source.file
    )
    if not uploading:
        return None
    used = sum(f.size_bytes for f in live.files.values())
    return StorageFit(limit=limit, used=used, uploading=uploading)


def _token_fits(
    admitted: Sequence[Action], waiting: Sequence[Action], budget: TokenBudget
) -> tuple[TokenFit, ...]:
    """Per limited model the plan creates jobs on: tokens enqueued, starting now, waiting."""
    now: defaultdict[str, int] = defaultdict(int)
    later: defaultdict[str, int] = defaultdict(int)
    for action in admitted:
        now[model_key(action.model or "")] += action.estimated_input_tokens
    for action in waiting:
        later[model_key(action.model or "")] += action.estimated_input_tokens
    return tuple(
        TokenFit(
            model=model,
            limit=budget.limits[model],
            enqueued=budget.used.get(model, 0),
            start_now=now.get(model, 0),
            waiting=later.get(model, 0),
        )
        for model in sorted(set(now) | set(later))
        if model in budget.limits
    )
