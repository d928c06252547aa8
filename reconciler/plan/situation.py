"""What the planner knows about one resource: its desired spec, its record, and the live jobs.

A `Situation` gathers the facts every rule of plan.rules reads, computed once per resource, so
each rule is a short predicate over named facts instead of a re-derivation. Per resource the
facts read the *current attempt group* (every shard recorded under the highest attempt number)
and the live jobs it points to. Live wins over the state for a job's state, because the state is
only as fresh as the last apply. A job counts as gone only when it is absent from `live.jobs`,
which the adapter fills from a complete listing: a partial listing would make the planner pay
for duplicate jobs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import SPEC_HASH_CHARS, IdentityTag, parse_tag, project_tokens
from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.model import Timeout, duration_seconds
from reconciler.plan.actions import DiffEntry, Reason, RequestChanges
from reconciler.plan.cost import PriceTable
from reconciler.plan.diff import field_diff, request_changes
from reconciler.state.document import (
    AttemptPurpose,
    JobAttempt,
    JobState,
    ResourceRecord,
    State,
)
from reconciler.state.results_check import ResultsCheck

BAD_END = {
    JobState.FAILED: Reason.JOB_FAILED,
    JobState.EXPIRED: Reason.JOB_EXPIRED,
    JobState.CANCELLED: Reason.JOB_CANCELLED,
}
"""The end states a job can end badly in, and the reason an action about it carries."""


@dataclass(frozen=True, slots=True)
class Member:
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
        """Live wins over the record, except that a job whose results proved unusable counts
        as FAILED whatever the service says (see JobAttempt.results_unusable)."""
        if self.attempt.results_unusable is not None:
            return JobState.FAILED
        return self.live.state if self.live is not None else self.attempt.state

    @property
    def in_progress(self) -> bool:
        return self.live is not None and not self.live.state.is_terminal

    @property
    def ended_badly(self) -> bool:
        return self.state in BAD_END


@dataclass(frozen=True, slots=True)
class Context:
    """What is the same for every resource of one plan."""

    live: Live
    tagged: Mapping[str, Sequence[tuple[IdentityTag, LiveJob]]]
    """Live jobs carrying an identity tag, by resource, oldest attempt first."""
    previous_key_digests: Mapping[str, Mapping[str, str]]
    prices: PriceTable
    force_replace: frozenset[str]
    tombstones: Mapping[str, int]
    """Per destroyed or forgotten resource, the highest attempt it had (State.tombstones)."""
    results_checks: Mapping[str, ResultsCheck] = field(default_factory=dict)
    """Per resource whose saved local results are missing or changed on disk, how."""
    destroying: bool = False
    """`reconciler destroy` plans: nothing is desired, and every record goes for that reason."""


def tag_index(live: Live, state: State) -> dict[str, list[tuple[IdentityTag, LiveJob]]]:
    """The live jobs this project made, by resource, in (attempt, shard, name) order.

    A job is this project's when its tag names the project (see live.tags), or, for a tag
    older than project names, when the state records that very tag. Jobs of a destroyed or
    forgotten resource (at or below its tombstone) are left out: they are never adopted again.
    """
    tokens = project_tokens(state.project, state.lineage)
    recorded = {a.tag for record in state.resources.values() for a in record.attempts}
    index: defaultdict[str, list[tuple[IdentityTag, LiveJob]]] = defaultdict(list)
    for job in live.jobs.values():
        tag = parse_tag(job.display_name)
        if tag is None or not tag.owned_by(tokens, recorded):
            continue
        if tag.attempt <= state.tombstones.get(tag.resource, 0):
            continue
        index[tag.resource].append((tag, job))
    for jobs in index.values():
        jobs.sort(key=lambda pair: (pair[0].attempt, pair[0].shard or 0, pair[1].name))
    return dict(index)


def _hash12(spec_hash: str) -> str:
    return spec_hash[:SPEC_HASH_CHARS]


def live_for(ctx: Context, resource: str, attempt: JobAttempt) -> LiveJob | None:
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


def adoptable(
    ctx: Context, resource: str, spec_hash: str, recorded: Collection[str], after: int
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


def overdue(member: Member, timeout: Timeout, now: datetime) -> str | None:
    """Why `member`'s live job is past `timeout` at `now` (None: it is not, or not running)."""
    job = member.live
    if job is None or job.state.is_terminal or job.create_time is None:
        return None
    waited = now - job.create_time
    limits = (
        ("pending", timeout.pending if job.state is JobState.PENDING else None),
        ("total", timeout.total),
    )
    for name, limit in limits:
        if limit is not None and waited.total_seconds() > duration_seconds(limit):
            hours = waited.total_seconds() / 3600
            return f"{job.name} was {job.state.value} for {hours:.1f}h, past policy.timeout.{name} {limit}"
    return None


def shard_names(subset: Sequence[Member]) -> str:
    """`shard 1` or `shards 0, 2`, for details."""
    shards = [str(m.attempt.shard) for m in subset]
    return f"shard {shards[0]}" if len(shards) == 1 else f"shards {', '.join(shards)}"


def live_names(members: Sequence[Member]) -> tuple[str, ...]:
    return tuple(m.live.name for m in members if m.live is not None)


@dataclass(frozen=True, slots=True)
class Situation:
    """The facts about one resource in scope; at least one of `resource` and `record` is set."""

    ctx: Context
    name: str
    resource: DesiredResource | None
    """The desired resource; None when its manifest was removed."""
    record: ResourceRecord | None
    """What the state recorded; None for a resource never applied."""
    number: int
    """The current attempt number (0 when nothing was attempted)."""
    members: tuple[Member, ...]
    """The current attempt group with its live jobs (empty when nothing was attempted)."""
    diff: tuple[DiffEntry, ...]
    """Recorded vs desired fields, sorted by path (empty for a removed resource)."""
    forced: bool
    """`--replace` names this resource."""
    spec_changed: bool
    """Neither the newest attempt nor the record carries the desired spec hash."""
    current_hashes: frozenset[str] = frozenset()
    """The spec hashes that stand for the desired spec: its own, and the record's when the
    record differs only by a priority hashed before priority became an in-place field."""

    def is_current(self, spec_hash: str) -> bool:
        """`spec_hash` (of the record or an attempt) stands for the desired spec."""
        return spec_hash in self.current_hashes

    @property
    def behind(self) -> bool:
        """The record carries the desired spec but its newest attempt ran an older one: an
        UPDATE found nothing to re-run, so whatever results exist stand for the desired spec."""
        return (
            self.resource is not None
            and bool(self.members)
            and not self.is_current(self.members[-1].attempt.spec_hash)
        )

    @property
    def sharded(self) -> bool:
        return any(m.attempt.shard is not None for m in self.members)

    @property
    def purpose(self) -> AttemptPurpose:
        """What the current attempt ran for; a re-run of some of its shards runs for the same."""
        return self.members[-1].attempt.purpose if self.members else AttemptPurpose.FULL

    @property
    def bad(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.ended_badly)

    @property
    def gone(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.gone)

    @property
    def collected(self) -> bool:
        """The results of the current attempt were saved."""
        results = self.record.results if self.record else None
        # An empty from_attempts comes from states written before attempts were tracked there.
        return results is not None and (
            not results.from_attempts or self.number in results.from_attempts
        )

    @property
    def stale(self) -> bool:
        """Some member's live state differs from the state it was recorded in."""
        return any(m.attempt.state is not m.state for m in self.members)

    @property
    def in_place_changed(self) -> bool:
        return any(not e.forces_replacement for e in self.diff)

    @property
    def running_jobs(self) -> tuple[str, ...]:
        """Every live unfinished job of any recorded attempt (an old one may have escaped a
        cancel), not only the current group's."""
        names: list[str] = []
        for attempt in self.record.attempts if self.record else ():
            job = live_for(self.ctx, self.name, attempt)
            if job is not None and not job.state.is_terminal and job.name not in names:
                names.append(job.name)
        return tuple(names)

    @property
    def next_attempt(self) -> int:
        """The number of a new attempt: after every recorded one and after any tombstone, so a
        resource created again under a destroyed one's name never reuses its jobs' tags."""
        recorded = self.record.current_number if self.record else 0
        return max(recorded, self.ctx.tombstones.get(self.name, 0)) + 1

    def attempts_used(self) -> int:
        """Attempts of the desired spec so far, each counted once however many shards it has."""
        records = self.record.attempts if self.record else ()
        return len({a.number for a in records if self.is_current(a.spec_hash)})

    def retries_used(self) -> int:
        """Retries of failed requests of the desired spec so far."""
        records = self.record.attempts if self.record else ()
        return len(
            {
                a.number
                for a in records
                if self.is_current(a.spec_hash) and a.purpose is AttemptPurpose.RETRY_FAILED
            }
        )

    def tries(self, subset: Sequence[Member]) -> int:
        """Attempts used, where a shard run again alone counts as one more attempt of it."""
        return self.attempts_used() + max((m.attempt.rerun for m in subset), default=0)

    @property
    def refusal(self) -> Reason | None:
        """Why policy will not run the badly ended members again; None when it will (or when
        the manifest is gone, so there is no policy to ask)."""
        if self.resource is None:
            return None
        policy = self.resource.manifest.spec.policy
        allowed = {s.value for s in policy.resubmit}
        if any(m.state.value not in allowed for m in self.bad):
            return Reason.POLICY_SAYS_NO
        if self.tries(self.bad) >= policy.max_attempts:
            return Reason.ATTEMPTS_EXHAUSTED
        return None

    def request_changes(self) -> RequestChanges | None:
        """Request keys added, removed or changed since the applied source, when both are known."""
        previous = self.ctx.previous_key_digests.get(self.name)
        current = self.resource.source.key_digests if self.resource else None
        return request_changes(previous, current) if previous and current else None

    def changes_for(self, purpose: AttemptPurpose) -> RequestChanges | None:
        """The request changes an attempt of `purpose` runs: only an incremental one uses them."""
        return self.request_changes() if purpose is AttemptPurpose.INCREMENTAL else None


def recorded_fields(record: ResourceRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record's replacing and in-place fields, with a `config.priority` recorded before
    priority became an in-place field moved to where it is now (`priority`)."""
    replacing = dict(record.replacing)
    in_place = dict(record.in_place)
    config = replacing.get("config")
    if isinstance(config, dict) and "priority" in config:
        replacing["config"] = {k: v for k, v in config.items() if k != "priority"}
        if in_place:
            in_place.setdefault("priority", config["priority"])
    return replacing, in_place


def _diff(
    resource: DesiredResource | None, record: ResourceRecord | None, forces: bool
) -> tuple[DiffEntry, ...]:
    if resource is None:
        return ()
    diff: tuple[DiffEntry, ...] = ()
    if record is None:
        diff = field_diff({}, resource.replacing_fields(), forces_replacement=False) + field_diff(
            {}, resource.in_place_fields(), forces_replacement=False
        )
    else:
        replacing, in_place = recorded_fields(record)
        # A record written without field copies (import, older tool) cannot be diffed; skip it.
        if replacing:
            diff += field_diff(replacing, resource.replacing_fields(), forces_replacement=forces)
        if in_place:
            diff += field_diff(in_place, resource.in_place_fields(), forces_replacement=False)
    return tuple(sorted(diff, key=lambda e: e.path))


def _current_hashes(resource: DesiredResource, record: ResourceRecord) -> frozenset[str]:
    """The desired spec hash, plus the record's when that hashed the same fields and a
    priority (as `config.priority`, before it became an in-place field): such a record's jobs
    stand for the desired spec, so changing the hash alone never replaces them."""
    config = record.replacing.get("config")
    if not isinstance(config, dict) or "priority" not in config:
        return frozenset({resource.spec_hash})
    replacing, _ = recorded_fields(record)
    if field_diff(replacing, resource.replacing_fields(), forces_replacement=False):
        return frozenset({resource.spec_hash})
    return frozenset({resource.spec_hash, record.spec_hash})


def situation(
    ctx: Context, name: str, resource: DesiredResource | None, record: ResourceRecord | None
) -> Situation:
    """The facts about resource `name`, which is desired, recorded, or both."""
    number = record.current_number if record else 0
    members = (
        tuple(Member(a, live_for(ctx, name, a)) for a in record.attempt_group(number))
        if record and record.attempts
        else ()
    )
    forced = name in ctx.force_replace
    spec_changed = False
    current = frozenset({resource.spec_hash}) if resource is not None else frozenset()
    if resource is not None and record is not None:
        current = _current_hashes(resource, record)
        applied_hash = members[-1].attempt.spec_hash if members else record.spec_hash
        # Either hash matching means the desired spec is applied: the record's spec_hash may lag
        # behind an intent recorded for a new spec (replacing on it would duplicate that
        # intent's job), and an UPDATE that needed no run moves the record's hash but not the
        # attempt's.
        spec_changed = applied_hash not in current and record.spec_hash not in current
    return Situation(
        ctx=ctx,
        name=name,
        resource=resource,
        record=record,
        number=number,
        members=members,
        diff=_diff(resource, record, spec_changed or forced),
        forced=forced,
        spec_changed=spec_changed,
        current_hashes=current,
    )
