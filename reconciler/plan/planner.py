"""Pure planner: (desired, state, live) -> Plan, following DESIGN §5; no I/O, no clock, no SDK.

Per resource the decision reads the *current attempt group* (every shard recorded under the
highest attempt number) and the live jobs it points to. Live wins over the state for a job's
state, because the state is only as fresh as the last apply. A job counts as gone only when it is
absent from `live.jobs`, which the adapter fills from a complete listing: a partial listing would
make the planner pay for duplicate jobs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from reconciler.config import Guardrails
from reconciler.errors import PlanError
from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import SPEC_HASH_CHARS, IdentityTag, parse_tag
from reconciler.manifests.desired import Desired, DesiredResource
from reconciler.manifests.model import Rerun
from reconciler.plan.actions import (
    Action,
    ActionKind,
    DiffEntry,
    Plan,
    Reason,
    RequestChanges,
    summarise,
)
from reconciler.plan.cost import PriceTable, default_price_table, estimate_tokens, parse_size
from reconciler.plan.diff import field_diff, request_changes
from reconciler.plan.guardrails import evaluate_guardrails
from reconciler.state.document import AttemptPurpose, JobAttempt, JobState, ResourceRecord, State

_BAD_END = {
    JobState.FAILED: Reason.JOB_FAILED,
    JobState.EXPIRED: Reason.JOB_EXPIRED,
    JobState.CANCELLED: Reason.JOB_CANCELLED,
}
# Which replacing field a replace is attributed to when several changed: the most consequential.
_REPLACE_REASONS = (
    ("model", Reason.MODEL_CHANGED),
    ("task", Reason.TASK_CHANGED),
    ("source", Reason.SOURCE_CHANGED),
    ("media", Reason.MEDIA_CHANGED),
    ("config", Reason.CONFIG_CHANGED),
)
_UPDATE_REASONS = (
    ("output", Reason.OUTPUT_MOVED),
    ("policy", Reason.POLICY_CHANGED),
    ("shards", Reason.SHARDS_CHANGED),
    ("labels", Reason.LABELS_CHANGED),
    ("source", Reason.SOURCE_CHANGED),
    ("config", Reason.CONFIG_CHANGED),
)
_EMPTY: Mapping[str, Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _Member:
    """One recorded job attempt (one shard) together with the live job it points to."""

    attempt: JobAttempt
    live: LiveJob | None

    @property
    def lost(self) -> bool:
        """An intent whose create never reached the service (no job carries its tag)."""
        return self.attempt.job_name is None and self.live is None

    @property
    def gone(self) -> bool:
        """A created job the service no longer lists."""
        return self.attempt.job_name is not None and self.live is None

    @property
    def state(self) -> JobState:
        return self.live.state if self.live is not None else self.attempt.state

    @property
    def in_progress(self) -> bool:
        return self.live is not None and not self.live.state.is_terminal


@dataclass(frozen=True, slots=True)
class _Context:
    live: Live
    tagged: Mapping[str, Sequence[tuple[IdentityTag, LiveJob]]]
    previous_key_digests: Mapping[str, Mapping[str, str]]
    prices: PriceTable
    force_replace: frozenset[str]


def _tag_index(live: Live) -> dict[str, list[tuple[IdentityTag, LiveJob]]]:
    index: defaultdict[str, list[tuple[IdentityTag, LiveJob]]] = defaultdict(list)
    for job in live.jobs.values():
        tag = parse_tag(job.display_name)
        if tag is not None:
            index[tag.resource].append((tag, job))
    for jobs in index.values():
        jobs.sort(key=lambda pair: (pair[0].attempt, pair[0].shard or 0, pair[1].name))
    return dict(index)


def _hash12(spec_hash: str) -> str:
    return spec_hash[:SPEC_HASH_CHARS]


def _live_for(ctx: _Context, resource: str, attempt: JobAttempt) -> LiveJob | None:
    """The live job of a recorded attempt: by name once created, by identity tag for an intent."""
    if attempt.job_name is not None:
        return ctx.live.jobs.get(attempt.job_name)
    for tag, job in ctx.tagged.get(resource, ()):
        if (
            tag.spec_hash == _hash12(attempt.spec_hash)
            and tag.attempt == attempt.number
            and tag.shard == attempt.shard
            and tag.rerun == attempt.rerun
        ):
            return job
    return None


def _adoptable(
    ctx: _Context, resource: str, spec_hash: str, recorded: Collection[str], after: int
) -> tuple[int, tuple[str, ...]] | None:
    """The newest untracked attempt (number, job names) tagged with the current spec hash."""
    found: defaultdict[int, list[str]] = defaultdict(list)
    for tag, job in ctx.tagged.get(resource, ()):
        if tag.spec_hash == _hash12(spec_hash) and tag.attempt > after and job.name not in recorded:
            found[tag.attempt].append(job.name)
    if not found:
        return None
    number = max(found)
    return number, tuple(found[number])


def _shard_count(resource: DesiredResource, requests: int, n_bytes: int) -> int:
    if requests <= 0:
        return 0
    shards = resource.manifest.spec.shards
    try:
        max_bytes = parse_size(shards.max_bytes)
    except ValueError:
        # Validation owns this error; here an unparseable limit just means "do not split on size".
        max_bytes = 0
    by_bytes = math.ceil(n_bytes / max_bytes) if max_bytes > 0 else 1
    return max(1, math.ceil(requests / shards.max_requests), by_bytes)


def _sized(
    ctx: _Context,
    resource: DesiredResource,
    record: ResourceRecord | None,
    purpose: AttemptPurpose,
    changes: RequestChanges | None,
) -> dict[str, Any]:
    """The workload fields of a job-creating action: what it would send and what that costs."""
    total = resource.source.request_count
    reused = 0
    match purpose:
        case AttemptPurpose.FULL:
            requests = total
        case AttemptPurpose.RETRY_FAILED:
            requests = record.results.failed if record and record.results else 0
        case AttemptPurpose.INCREMENTAL:
            requests = changes.to_run if changes else total
            reused = changes.unchanged if changes else 0
    # Partial runs send a subset of the lines; their size is estimated in proportion.
    n_bytes = (
        resource.source.bytes
        if requests >= total or total == 0
        else (resource.source.bytes * requests // total)
    )
    return _workload(
        ctx,
        resource,
        purpose,
        jobs=_shard_count(resource, requests, n_bytes),
        requests=requests,
        n_bytes=n_bytes,
        reused=reused,
    )


def _workload(
    ctx: _Context,
    resource: DesiredResource,
    purpose: AttemptPurpose,
    *,
    jobs: int,
    requests: int,
    n_bytes: int,
    reused: int = 0,
    shards: tuple[int, ...] = (),
) -> dict[str, Any]:
    """An action's workload fields, with the token and cost estimate for `n_bytes` of input."""
    tokens = estimate_tokens(n_bytes)
    model = resource.manifest.spec.model
    return {
        "purpose": purpose,
        "model": model,
        "jobs": jobs,
        "requests": requests,
        "reused_requests": reused,
        "bytes": n_bytes,
        "estimated_input_tokens": tokens,
        "estimated_cost_usd": ctx.prices.batch_input_cost(model, tokens),
        "shards": shards,
    }


def _first_reason(
    diff: Sequence[DiffEntry], table: Sequence[tuple[str, Reason]], default: Reason
) -> Reason:
    heads = {entry.path.split(".", 1)[0].split("[", 1)[0] for entry in diff}
    for head, reason in table:
        if head in heads:
            return reason
    return default


def _next_attempt(record: ResourceRecord | None) -> int:
    return max((a.number for a in record.attempts), default=0) + 1 if record else 1


def _attempts_used(record: ResourceRecord, spec_hash: str) -> int:
    return len({a.number for a in record.attempts if a.spec_hash == spec_hash})


def _retries_used(record: ResourceRecord, spec_hash: str) -> int:
    return len(
        {
            a.number
            for a in record.attempts
            if a.spec_hash == spec_hash and a.purpose is AttemptPurpose.RETRY_FAILED
        }
    )


def _running_jobs(ctx: _Context, record: ResourceRecord) -> tuple[str, ...]:
    """Every live unfinished job of any recorded attempt (an old one may have escaped a cancel)."""
    names: list[str] = []
    for attempt in record.attempts:
        job = _live_for(ctx, record.name, attempt)
        if job is not None and not job.state.is_terminal and job.name not in names:
            names.append(job.name)
    return tuple(names)


def _members(ctx: _Context, record: ResourceRecord) -> tuple[int, tuple[_Member, ...]]:
    if not record.attempts:
        return 0, ()
    number = record.current_number
    group = record.attempt_group(number)
    return number, tuple(_Member(a, _live_for(ctx, record.name, a)) for a in group)


def _is_sharded(members: Sequence[_Member]) -> bool:
    return any(m.attempt.shard is not None for m in members)


def _shard_subset(
    ctx: _Context,
    resource: DesiredResource,
    members: Sequence[_Member],
    subset: Sequence[_Member],
    purpose: AttemptPurpose,
) -> dict[str, Any]:
    """The workload fields of re-creating only `subset` of a sharded attempt's jobs."""
    total = resource.source.request_count
    # States written before request counts were recorded: assume equal shards.
    even = -(-total // max(len(members), 1))
    requests = sum(
        m.attempt.request_count if m.attempt.request_count is not None else even for m in subset
    )
    return _workload(
        ctx,
        resource,
        purpose,
        jobs=len(subset),
        requests=requests,
        n_bytes=resource.source.bytes * requests // total if total else 0,
        shards=tuple(m.attempt.shard or 0 for m in subset),
    )


def _shard_names(subset: Sequence[_Member]) -> str:
    shards = [str(m.attempt.shard) for m in subset]
    return f"shard {shards[0]}" if len(shards) == 1 else f"shards {', '.join(shards)}"


def _collected(record: ResourceRecord, number: int) -> bool:
    results = record.results
    # An empty from_attempts comes from states written before attempts were tracked there.
    return results is not None and (not results.from_attempts or number in results.from_attempts)


def _plan_new(ctx: _Context, resource: DesiredResource) -> Action:
    diff = field_diff({}, resource.replacing_fields(), forces_replacement=False) + field_diff(
        {}, resource.in_place_fields(), forces_replacement=False
    )
    diff = tuple(sorted(diff, key=lambda e: e.path))
    adopt = _adoptable(ctx, resource.name, resource.spec_hash, (), 0)
    if adopt is not None:
        number, jobs = adopt
        return Action(
            ActionKind.ADOPT,
            resource.name,
            Reason.TAGGED_JOB_FOUND,
            detail=f"adopt {', '.join(jobs)} as attempt {number}",
            diff=diff,
            job_names=jobs,
            attempt=number,
        )
    return Action(
        ActionKind.CREATE,
        resource.name,
        Reason.NEW_RESOURCE,
        diff=diff,
        next_attempt=1,
        **_sized(ctx, resource, None, AttemptPurpose.FULL, None),
    )


def _plan_replace(
    ctx: _Context,
    resource: DesiredResource,
    record: ResourceRecord,
    members: Sequence[_Member],
    diff: tuple[DiffEntry, ...],
    forced: bool,
) -> Action:
    running = _running_jobs(ctx, record)
    previous = ctx.previous_key_digests.get(resource.name)
    current = resource.source.key_digests
    changes = request_changes(previous, current) if previous and current else None
    replacing = [e for e in diff if e.forces_replacement]
    # Results of unchanged requests can be reused only when nothing but the source changed:
    # another model, task, config or media makes every previous result stale.
    incremental = (
        not forced
        and resource.manifest.spec.policy.rerun is Rerun.CHANGED
        and changes is not None
        and record.results is not None
        and not running
        and bool(replacing)
        and all(e.path.startswith("source.") for e in replacing)
    )
    if incremental and changes is not None and changes.to_run == 0:
        retry = _settled(
            ctx, resource, record, max((m.attempt.number for m in members), default=0), diff
        )
        if retry.kind is ActionKind.RESUBMIT:
            # Nothing new to run, but kept results include failures the policy retries.
            reused = max(changes.unchanged - retry.requests, 0)
            return replace(retry, request_changes=changes, reused_requests=reused)
        return Action(
            ActionKind.UPDATE,
            resource.name,
            Reason.NO_REQUESTS_TO_RUN,
            detail=f"{changes.removed} removed request(s) are dropped from the results",
            diff=diff,
            request_changes=changes,
            reused_requests=changes.unchanged,
        )
    reason = (
        Reason.REPLACE_REQUESTED
        if forced
        else _first_reason(replacing, _REPLACE_REASONS, Reason.SPEC_CHANGED)
    )
    purpose = AttemptPurpose.INCREMENTAL if incremental else AttemptPurpose.FULL
    number = _next_attempt(record)
    detail = (
        f"cancel {', '.join(running)}, then create attempt {number}"
        if running
        else f"create attempt {number}"
    )
    current_number = max((m.attempt.number for m in members), default=None)
    return Action(
        ActionKind.REPLACE,
        resource.name,
        reason,
        detail=detail,
        diff=diff,
        request_changes=changes,
        job_names=running,
        attempt=current_number,
        next_attempt=number,
        cancel_first=bool(running),
        **_sized(ctx, resource, record, purpose, changes),
    )


def _plan_existing(ctx: _Context, resource: DesiredResource, record: ResourceRecord) -> Action:
    name = resource.name
    spec = resource.manifest.spec
    policy = spec.policy
    number, members = _members(ctx, record)
    applied_hash = members[-1].attempt.spec_hash if members else record.spec_hash
    forced = name in ctx.force_replace
    # Either hash matching means the desired spec is applied: the record's spec_hash may lag
    # behind an intent recorded for a new spec (replacing on it would duplicate that intent's
    # job), and an UPDATE that needed no run moves the record's hash but not the attempt's.
    hash_changed = resource.spec_hash not in (applied_hash, record.spec_hash)

    # A record written without field copies (import, older tool) cannot be diffed; skip it.
    diff: tuple[DiffEntry, ...] = ()
    if record.replacing:
        diff += field_diff(
            record.replacing, resource.replacing_fields(), forces_replacement=hash_changed or forced
        )
    if record.in_place:
        diff += field_diff(record.in_place, resource.in_place_fields(), forces_replacement=False)
    diff = tuple(sorted(diff, key=lambda e: e.path))

    def action(kind: ActionKind, reason: Reason, **fields: Any) -> Action:
        return Action(kind, name, reason, diff=diff, **fields)

    recorded_jobs = {a.job_name for a in record.attempts if a.job_name is not None}
    adopt = _adoptable(ctx, name, resource.spec_hash, recorded_jobs, number)
    if adopt is not None:
        found, jobs = adopt
        return action(
            ActionKind.ADOPT,
            Reason.TAGGED_JOB_FOUND,
            detail=f"adopt {', '.join(jobs)} as attempt {found}",
            job_names=jobs,
            attempt=found,
        )

    if hash_changed or forced:
        return _plan_replace(ctx, resource, record, members, diff, forced)

    if members and applied_hash != resource.spec_hash:
        # The record already carries the desired spec but its newest attempt ran an older one:
        # an UPDATE found nothing to re-run, so the results stand for the desired spec.
        if _running_jobs(ctx, record):
            return _plan_replace(ctx, resource, record, members, diff, forced)
        if record.results is not None:
            return _settled(ctx, resource, record, number, diff)
        return action(
            ActionKind.CREATE,
            Reason.NO_JOB_RECORDED,
            next_attempt=_next_attempt(record),
            **_sized(ctx, resource, record, AttemptPurpose.FULL, None),
        )

    if not members:
        if record.results is None:
            return action(
                ActionKind.CREATE,
                Reason.NO_JOB_RECORDED,
                next_attempt=1,
                **_sized(ctx, resource, record, AttemptPurpose.FULL, None),
            )
        return _settled(ctx, resource, record, number, diff)

    purpose = members[-1].attempt.purpose
    intents = [m for m in members if m.attempt.is_intent and m.live is not None]
    if intents:
        jobs = tuple(m.live.name for m in intents if m.live is not None)
        return action(
            ActionKind.ADOPT,
            Reason.TAGGED_JOB_FOUND,
            detail=f"adopt {', '.join(jobs)} as attempt {number}",
            job_names=jobs,
            attempt=number,
        )
    lost = [m for m in members if m.lost]
    if lost and _is_sharded(members):
        # Only the lost shards: the others have jobs, and creating them again would pay twice.
        return action(
            ActionKind.CREATE,
            Reason.PREVIOUS_CREATE_LOST,
            detail=f"{_shard_names(lost)} of attempt {number} never reached the service",
            attempt=number,
            next_attempt=number,
            **_shard_subset(ctx, resource, members, lost, purpose),
        )
    if lost:
        # Reuse the intent's attempt number: no job carries its tag, so the number is still free.
        return action(
            ActionKind.CREATE,
            Reason.PREVIOUS_CREATE_LOST,
            detail=f"attempt {number} was recorded but never reached the service",
            attempt=number,
            next_attempt=number,
            **_sized(ctx, resource, record, purpose, _incremental_changes(ctx, resource, purpose)),
        )
    attempts_used = _attempts_used(record, resource.spec_hash)
    bad = [m for m in members if m.state in _BAD_END]
    # A shard run again alone counts as one more attempt of it against policy.max_attempts.
    tries = attempts_used + max((m.attempt.rerun for m in bad), default=0)
    refusal: Reason | None = None
    if any(m.state.value not in {s.value for s in policy.resubmit} for m in bad):
        refusal = Reason.POLICY_SAYS_NO
    elif tries >= policy.max_attempts:
        refusal = Reason.ATTEMPTS_EXHAUSTED
    if bad and refusal is None and _is_sharded(members):
        # A shard that ended badly is resubmitted alone, at once: its siblings' jobs (running
        # or done) stay, and the attempt's results are merged from every shard's newest run.
        return action(
            ActionKind.RESUBMIT,
            _BAD_END[bad[0].state],
            detail=f"{_shard_names(bad)} of attempt {number} ended "
            f"{'/'.join(sorted({m.state.value for m in bad}))}; run again alone "
            f"(try {tries + 1} of at most {policy.max_attempts})",
            job_names=tuple(m.live.name for m in bad if m.live is not None),
            attempt=number,
            next_attempt=number,
            **_shard_subset(ctx, resource, members, bad, purpose),
        )
    running = tuple(m.live.name for m in members if m.in_progress and m.live is not None)
    if running:
        states = sorted({m.state.value for m in members if m.in_progress})
        return action(
            ActionKind.REFRESH,
            Reason.JOB_IN_PROGRESS,
            detail=f"attempt {number} is {'/'.join(states)}",
            job_names=running,
            attempt=number,
        )

    collected = _collected(record, number)
    if bad:
        end = bad[0].state
        reason = _BAD_END[end]
        live_bad = tuple(m.live.name for m in bad if m.live is not None)
        if refusal is None:
            # An unsharded attempt runs again as a new attempt.
            next_number = _next_attempt(record)
            return action(
                ActionKind.RESUBMIT,
                reason,
                detail=f"attempt {number} ended {end.value}; attempt {next_number} of at most "
                f"{policy.max_attempts}",
                job_names=live_bad,
                attempt=number,
                next_attempt=next_number,
                **_sized(
                    ctx, resource, record, purpose, _incremental_changes(ctx, resource, purpose)
                ),
            )
        good = [m for m in members if m.state.is_success]
        if _is_sharded(members) and collected:
            # The shards that succeeded were collected, the others' requests recorded as failed.
            return _settled(ctx, resource, record, number, diff)
        if _is_sharded(members) and good and all(m.live is not None for m in good):
            # Save what the other shards produced before the service deletes it; the requests
            # of the shards that will not run again become failed requests in the results.
            return action(
                ActionKind.COLLECT,
                reason,
                detail=f"collect {_shard_names(good)} of attempt {number}; the requests of "
                f"{_shard_names(bad)} ({end.value}) are recorded as failed, not resubmitted "
                f"because {refusal.text}",
                job_names=tuple(m.live.name for m in members if m.live is not None),
                attempt=number,
                shards=tuple(m.attempt.shard or 0 for m in bad),
            )
        stale = any(m.attempt.state is not m.state for m in members)
        if stale:
            return action(
                ActionKind.COLLECT,
                reason,
                detail=f"record that attempt {number} ended {end.value}; not resubmitted "
                f"because {refusal.text}",
                job_names=tuple(m.live.name for m in members if m.live is not None),
                attempt=number,
            )
        if any(not e.forces_replacement for e in diff):
            return action(
                ActionKind.UPDATE, _first_reason(diff, _UPDATE_REASONS, Reason.SPEC_CHANGED)
            )
        return action(
            ActionKind.NOOP,
            refusal,
            detail=f"attempt {number} ended {end.value}",
            attempt=number,
        )

    # Every member succeeded (by live state, or by the state's record for a job now gone).
    if not collected:
        gone = [m for m in members if m.gone]
        tries = attempts_used + max((m.attempt.rerun for m in gone), default=0)
        if gone and _is_sharded(members) and tries < policy.max_attempts:
            return action(
                ActionKind.RECREATE,
                Reason.JOB_GONE,
                detail=f"{_shard_names(gone)} of attempt {number} "
                f"({', '.join(m.attempt.job_name or '' for m in gone)}) not found; run again "
                "alone",
                attempt=number,
                next_attempt=number,
                **_shard_subset(ctx, resource, members, gone, purpose),
            )
        if gone:
            if tries >= policy.max_attempts and any(not e.forces_replacement for e in diff):
                return action(
                    ActionKind.UPDATE, _first_reason(diff, _UPDATE_REASONS, Reason.SPEC_CHANGED)
                )
            if tries >= policy.max_attempts:
                return action(
                    ActionKind.NOOP,
                    Reason.ATTEMPTS_EXHAUSTED,
                    detail=f"{', '.join(m.attempt.job_name or '' for m in gone)} is gone at the "
                    "service before its results were collected",
                    attempt=number,
                )
            next_number = _next_attempt(record)
            return action(
                ActionKind.RECREATE,
                Reason.JOB_GONE,
                detail=f"{', '.join(m.attempt.job_name or '' for m in gone)} not found; "
                f"create attempt {next_number}",
                attempt=number,
                next_attempt=next_number,
                **_sized(
                    ctx, resource, record, purpose, _incremental_changes(ctx, resource, purpose)
                ),
            )
        return action(
            ActionKind.COLLECT,
            Reason.JOB_SUCCEEDED,
            detail=f"download the results of attempt {number} to {spec.output}",
            job_names=tuple(m.live.name for m in members if m.live is not None),
            attempt=number,
        )
    return _settled(ctx, resource, record, number, diff)


def _incremental_changes(
    ctx: _Context, resource: DesiredResource, purpose: AttemptPurpose
) -> RequestChanges | None:
    if purpose is not AttemptPurpose.INCREMENTAL:
        return None
    previous = ctx.previous_key_digests.get(resource.name)
    current = resource.source.key_digests
    return request_changes(previous, current) if previous and current else None


def _settled(
    ctx: _Context,
    resource: DesiredResource,
    record: ResourceRecord,
    number: int,
    diff: tuple[DiffEntry, ...],
) -> Action:
    """Results are collected: retry failed requests, update in place, or nothing."""
    policy = resource.manifest.spec.policy
    results = record.results
    name = resource.name
    if (
        results is not None
        and results.failed > 0
        and _retries_used(record, resource.spec_hash) < policy.retry_failed_requests
        and _attempts_used(record, resource.spec_hash) < policy.max_attempts
    ):
        next_number = _next_attempt(record)
        return Action(
            ActionKind.RESUBMIT,
            name,
            Reason.FAILED_REQUESTS,
            detail=f"{results.failed} request(s) failed; attempt {next_number} re-runs only those",
            diff=diff,
            attempt=number or None,
            next_attempt=next_number,
            **_sized(ctx, resource, record, AttemptPurpose.RETRY_FAILED, None),
        )
    if diff or record.spec_hash != resource.spec_hash:
        return Action(
            ActionKind.UPDATE,
            name,
            _first_reason(diff, _UPDATE_REASONS, Reason.SPEC_CHANGED),
            diff=diff,
            attempt=number or None,
        )
    all_gone = number > 0 and all(
        a.job_name is not None and a.job_name not in ctx.live.jobs
        for a in record.attempts
        if a.number == number
    )
    return Action(
        ActionKind.NOOP,
        name,
        Reason.RESULTS_COLLECTED if all_gone else Reason.UP_TO_DATE,
        detail=f"{results.failed} request(s) failed" if results and results.failed else "",
        attempt=number or None,
    )


def _plan_absent(ctx: _Context, record: ResourceRecord) -> Action:
    running = _running_jobs(ctx, record)
    number = max((a.number for a in record.attempts), default=None)
    if running:
        return Action(
            ActionKind.CANCEL,
            record.name,
            Reason.NOT_DESIRED,
            detail=f"cancel {', '.join(running)}, then forget",
            job_names=running,
            attempt=number,
        )
    where = f"; results stay at {record.results.location}" if record.results else ""
    return Action(
        ActionKind.FORGET,
        record.name,
        Reason.NOT_DESIRED,
        detail=f"drop the record{where}",
        attempt=number,
    )


def _plan_refresh_only(
    ctx: _Context, name: str, resource: DesiredResource | None, record: ResourceRecord | None
) -> Action | None:
    """Only bring the state up to date with the world: adopt, refresh, collect."""
    if record is None:
        if resource is None:
            return None
        adopt = _adoptable(ctx, name, resource.spec_hash, (), 0)
        if adopt is None:
            return None
        number, jobs = adopt
        return Action(
            ActionKind.ADOPT,
            name,
            Reason.TAGGED_JOB_FOUND,
            detail=f"adopt {', '.join(jobs)} as attempt {number}",
            job_names=jobs,
            attempt=number,
        )
    number, members = _members(ctx, record)
    intents = tuple(m.live.name for m in members if m.attempt.is_intent and m.live is not None)
    if intents:
        return Action(
            ActionKind.ADOPT, name, Reason.TAGGED_JOB_FOUND, job_names=intents, attempt=number
        )
    running = tuple(m.live.name for m in members if m.in_progress and m.live is not None)
    if running:
        return Action(
            ActionKind.REFRESH, name, Reason.JOB_IN_PROGRESS, job_names=running, attempt=number
        )
    ended = tuple(m.live.name for m in members if m.live is not None)
    bad = [m for m in members if m.state in _BAD_END]
    if bad and any(m.attempt.state is not m.state for m in members):
        return Action(
            ActionKind.COLLECT, name, _BAD_END[bad[0].state], job_names=ended, attempt=number
        )
    if not bad and ended and not _collected(record, number):
        return Action(
            ActionKind.COLLECT, name, Reason.JOB_SUCCEEDED, job_names=ended, attempt=number
        )
    return Action(ActionKind.NOOP, name, Reason.UP_TO_DATE, attempt=number or None)


def make_plan(
    desired: Desired,
    state: State,
    live: Live,
    *,
    created_at: datetime,
    previous_key_digests: Mapping[str, Mapping[str, str]] = _EMPTY,
    targets: Sequence[str] = (),
    force_replace: Sequence[str] = (),
    refresh_only: bool = False,
    prices: PriceTable | None = None,
    guardrails: Guardrails | None = None,
) -> Plan:
    """Decide one action per resource (DESIGN §5) and total them up.

    Args:
        previous_key_digests: per resource, the request-key index of the source last applied
            (loaded by the caller from `ResourceRecord.key_digests_ref`); enables request-level
            diffs and incremental re-runs. Missing entries just mean "not known".
        targets: restrict the plan to these resources (`--target`); empty means all.
        force_replace: resources to replace even if unchanged (`--replace`).
        refresh_only: plan only adopt/refresh/collect, never a create, replace or cancel.
        prices: the price table (default: the shipped one, without project overrides).
        guardrails: limits to check; violations are recorded in `Plan.violations`.

    Raises:
        PlanError: a target or a forced replace names no resource.
    """
    known = set(desired.resources) | set(state.resources)
    unknown_targets = sorted(set(targets) - known)
    if unknown_targets:
        raise PlanError(f"--target names no resource in the manifests or state: {unknown_targets}")
    unknown_replace = sorted(set(force_replace) - set(desired.resources))
    if unknown_replace:
        raise PlanError(f"--replace names no resource in the manifests: {unknown_replace}")
    table = prices if prices is not None else default_price_table()
    ctx = _Context(
        live=live,
        tagged=_tag_index(live),
        previous_key_digests=previous_key_digests,
        prices=table,
        force_replace=frozenset(force_replace),
    )
    scope = sorted(set(targets) if targets else known)
    actions: list[Action] = []
    for name in scope:
        resource = desired.resources.get(name)
        record = state.resources.get(name)
        if refresh_only:
            planned = _plan_refresh_only(ctx, name, resource, record)
            if planned is not None:
                actions.append(planned)
        elif resource is None and record is not None:
            actions.append(_plan_absent(ctx, record))
        elif resource is not None and record is None:
            actions.append(_plan_new(ctx, resource))
        elif resource is not None and record is not None:
            actions.append(_plan_existing(ctx, resource, record))
    frozen = tuple(actions)
    summary = summarise(frozen, price_table_as_of=table.as_of)
    violations = evaluate_guardrails(frozen, summary, state, live, guardrails or Guardrails())
    return Plan(
        created_at=created_at,
        state_lineage=state.lineage,
        state_serial=state.serial,
        manifests_sha256=desired.manifests_sha256,
        actions=frozen,
        summary=summary,
        violations=violations,
        targets=tuple(sorted(targets)),
        force_replace=tuple(sorted(force_replace)),
        refresh_only=refresh_only,
    )
