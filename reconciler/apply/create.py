"""The create stage: turn a create/replace/resubmit/recreate action into jobs at the service.

For each job (one per shard): prepare its input, upload it (or reuse the upload still at the
service), record the intent, create the job, record the job. The intent is saved before the
create call and carries the job's identity tag, so a crash between the two is healed by
adoption (the tagged job is found), never by a second create.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, assert_never

from reconciler.apply.context import ApplyContext, crash_point
from reconciler.apply.events import EventKind
from reconciler.apply.inputs import PreparedInput, prepare_inputs
from reconciler.apply.outputs import previous_results, read_results
from reconciler.apply.records import (
    bring_to_spec,
    record_for,
    record_live_states,
    store_digests,
    with_job,
)
from reconciler.errors import ServiceError, StateError, TransientServiceError
from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import IdentityTag, project_token
from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.model import Task
from reconciler.manifests.requests import camel
from reconciler.plan.actions import Action, ActionKind, Reason
from reconciler.plan.cost import parse_size
from reconciler.state.document import (
    AttemptPurpose,
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
    State,
)
from reconciler.state.request_keys import load_key_digests, load_request_keys, store_request_keys

_UPLOAD_REUSE_MARGIN = timedelta(hours=2)
"""An uploaded input is reused only if it outlives the job's likely queue time by this much."""


@dataclass(frozen=True, slots=True)
class _Run:
    """One job to create: which attempt, shard run and input it is."""

    number: int
    purpose: AttemptPurpose
    prepared: PreparedInput
    rerun: int = 0
    """Which run of its shard this is within the attempt (0: the first)."""
    file_name: str | None = None
    """An input already at the service to send instead of `prepared.file`."""
    keys_ref: str | None = None
    """The stored request keys it sends, when already stored."""


async def create(context: ApplyContext, action: Action, live: Live) -> None:
    """Create the jobs of `action`'s next attempt (every shard, or only some of them).

    Every input is uploaded first; then one state write records every job's intent and moves
    the record to the desired spec; only then are the jobs created. So a refused upload or a
    kill before that write leaves the record on its old spec (the next plan shows the change
    again), and a kill after it leaves intents from which the next apply creates exactly the
    jobs that are missing (DESIGN §7, "no lost changes").
    """
    resource = context.resource(action.resource)
    number = action.next_attempt or 1
    purpose = action.purpose or AttemptPurpose.FULL
    if action.kind is not ActionKind.REPLACE and action.job_names:
        # A resubmit follows jobs that ended badly: record how they ended first.
        await record_live_states(context, live, action.resource, action.job_names)
    lost = _lost_intents(context, resource.name, number, action.reason)
    if action.shards_to_create or lost:
        again = action.shards_to_create or lost
        await _rerun_shards(context, live, resource, number, purpose, again)
        return
    only_keys = await _keys_to_run(context, resource, purpose)
    if only_keys is not None and not only_keys:
        # Nothing to realise: the results already stand for the desired spec.
        await bring_to_spec(context, resource)
        context.emit(EventKind.WARNING, resource.name, "no request needs a run; nothing created")
        return
    await upload_media(context, resource)
    staging = context.staging(resource.name) / f"attempt-{number}"
    inputs = await asyncio.to_thread(
        prepare_inputs,
        resource,
        context.project.root,
        staging,
        shards=max(1, action.jobs),
        only_keys=only_keys,
        media_uris=context.media.uris,
        max_bytes=_shard_max_bytes(resource),
    )
    if action.jobs and len(inputs) > action.jobs:
        context.emit(
            EventKind.WARNING,
            resource.name,
            f"split into {len(inputs)} jobs, not the {action.jobs} planned: its requests vary "
            "in size, and no input file may exceed shards.max_bytes",
        )
    uploads = await asyncio.gather(
        *(_upload_run(context, live, resource, _Run(number, purpose, p)) for p in inputs)
    )
    runs = [run for run, _ in uploads]
    whole = next((record for _, record in uploads if record is not None), None)
    intents = await _record_intents(context, resource, runs, input_record=whole, to_spec=True)
    await asyncio.gather(
        *(_create_recorded(context, resource, r, *i) for r, i in zip(runs, intents, strict=True))
    )
    if purpose is not AttemptPurpose.FULL or len(inputs) > 1:
        shutil.rmtree(staging, ignore_errors=True)


def _lost_intents(
    context: ApplyContext, name: str, number: int, reason: Reason
) -> tuple[int | None, ...]:
    """The shards (None: the whole attempt) of attempt `number` recorded only as intents, when
    the plan creates them again because their create never reached the service."""
    record = context.store.state.resources.get(name)
    if reason is not Reason.PREVIOUS_CREATE_LOST or record is None:
        return ()
    return tuple(a.shard for a in record.attempt_group(number) if a.is_intent)


async def _rerun_shards(
    context: ApplyContext,
    live: Live,
    resource: DesiredResource,
    number: int,
    purpose: AttemptPurpose,
    shards: Sequence[int | None],
) -> None:
    """Run these shards of attempt `number` again alone: each one that ended badly, went
    missing, or whose create never reached the service (None: an unsharded attempt's only
    job). Its siblings keep their jobs."""
    record = context.store.state.resources[resource.name]
    group = {a.shard: a for a in record.attempt_group(number)}
    missing = [s for s in shards if s not in group]
    if missing:
        raise StateError(
            f"{resource.name}: attempt {number} records no shard {missing[0]}; plan again"
        )
    await upload_media(context, resource)
    staging = context.staging(resource.name) / f"attempt-{number}-rerun"
    runs = []
    for index in shards:
        previous = group[index]
        # A lost intent's tag is carried by no job, so it is reused; otherwise a new rerun.
        rerun = previous.rerun if previous.is_intent else previous.rerun + 1
        reused = await _usable_file(context, live, previous.input_file)
        if reused is not None and previous.request_count is not None:
            prepared = PreparedInput(index, previous.request_count, None)
        else:
            reused = None
            prepared = await shard_input(context, resource, previous, len(group), staging)
        run = _Run(number, purpose, prepared, rerun, reused, previous.request_keys_file)
        runs.append((await _upload_run(context, live, resource, run))[0])
    intents = await _record_intents(context, resource, runs, input_record=None, to_spec=False)
    await asyncio.gather(
        *(_create_recorded(context, resource, r, *i) for r, i in zip(runs, intents, strict=True))
    )
    shutil.rmtree(staging, ignore_errors=True)


async def shard_input(
    context: ApplyContext,
    resource: DesiredResource,
    shard: JobAttempt,
    shards: int,
    staging: Path,
) -> PreparedInput:
    """The input shard `shard` sent, written again from the source.

    Its request keys are stored beside the state; a state written before they were (a full
    run) splits the source the same way again, which gives the same shard.

    Raises:
        StateError: the shard's keys are recorded but missing, or it ran an unrecorded subset.
    """
    index = shard.shard or 0  # for messages and the staging folder; None means unsharded
    keys: frozenset[str] | None = None
    if shard.request_keys_file is not None:
        stored = await asyncio.to_thread(
            load_request_keys, context.store.backend, shard.request_keys_file
        )
        if stored is None:
            raise StateError(
                f"{resource.name}: the request keys of shard {index} are missing from the "
                f"state's storage (request-keys/{shard.request_keys_file})"
            )
        keys = frozenset(stored)
    elif shard.purpose is not AttemptPurpose.FULL:
        raise StateError(
            f"{resource.name}: shard {index} ran a subset of the requests that the state "
            "does not record; replace the resource (`--replace`) to run it again"
        )
    inputs = await asyncio.to_thread(
        prepare_inputs,
        resource,
        context.project.root,
        staging / f"shard-{index}",
        shards=1 if keys is not None else shards,
        only_keys=keys,
        media_uris=context.media.uris,
    )
    if keys is not None:
        return replace(inputs[0], shard=shard.shard)
    return next(item for item in inputs if item.shard == shard.shard)


async def _usable_file(context: ApplyContext, live: Live, file_name: str | None) -> str | None:
    """`file_name` if the service still has it, active, and not about to expire."""
    if file_name is None:
        return None
    live_file = (
        live.files.get(file_name)
        if live.files_listed
        else await context.adapter.get_file(file_name)
    )
    if (
        live_file is not None
        and live_file.state == "ACTIVE"
        and (
            live_file.expiration_time is None
            or live_file.expiration_time > context.clock.now() + _UPLOAD_REUSE_MARGIN
        )
    ):
        return live_file.name
    return None


async def _keys_to_run(
    context: ApplyContext, resource: DesiredResource, purpose: AttemptPurpose
) -> frozenset[str] | None:
    """The request keys a partial attempt runs; None for all of them."""
    match purpose:
        case AttemptPurpose.FULL:
            return None
        case AttemptPurpose.RETRY_FAILED:
            record = context.store.state.resources[resource.name]
            return frozenset(await asyncio.to_thread(_failed_keys, context, resource, record))
        case AttemptPurpose.INCREMENTAL:
            state = context.store.state
            record = state.resources[resource.name]
            recorded = await asyncio.to_thread(load_key_digests, context.store.backend, state)
            previous = recorded.get(resource.name, {})
            current = resource.source.key_digests
            if not current or record.results is None:
                return None
            return frozenset(k for k, d in current.items() if previous.get(k) != d)
        case _:
            assert_never(purpose)


def _failed_keys(
    context: ApplyContext, resource: DesiredResource, record: ResourceRecord
) -> list[str]:
    if record.results is None:
        return []
    scratch = context.staging(resource.name)
    with previous_results(record.results.location, context.project.root, scratch) as path:
        if path is None:
            return []
        return [
            str(line.get("key"))
            for line in read_results(path)
            if line.get("error") is not None or line.get("status") is not None
        ]


async def upload_media(context: ApplyContext, resource: DesiredResource) -> None:
    """Upload every local media file a request references (once per content per run)."""
    media = context.media
    async with media.lock:
        for item in resource.media:
            if item.path in media.uris:
                continue
            uploaded = await context.adapter.upload_file(
                context.project.root / item.path,
                display_name=f"rc-media-{item.sha256[:12]}",
                mime_type=item.mime_type,
            )
            media.uris[item.path] = (uploaded.uri or uploaded.name, item.mime_type)
            context.emit(EventKind.STEP, resource.name, f"uploaded {item.path} as {uploaded.name}")


async def _upload_run(
    context: ApplyContext, live: Live, resource: DesiredResource, run: _Run
) -> tuple[_Run, InputRecord | None]:
    """`run` with its input at the service and its request keys stored; the input record when
    the whole source went up as one file (recorded with the intents, not before them)."""
    prepared = run.prepared
    input_record = None
    file_name = run.file_name
    if file_name is None and prepared.file is not None:
        file_name, input_record = await _upload_input(context, live, resource, prepared)
    keys_ref = await _keys_ref(context, run)
    return replace(run, file_name=file_name, keys_ref=keys_ref), input_record


async def _record_intents(
    context: ApplyContext,
    resource: DesiredResource,
    runs: Sequence[_Run],
    *,
    input_record: InputRecord | None,
    to_spec: bool,
) -> list[tuple[JobAttempt, IdentityTag]]:
    """Record every run's intent in one write (with `to_spec`, moving the record to the desired
    spec and its key digests in that same write); each intent with its identity tag, in the
    order of `runs`."""
    digests_ref = await store_digests(context, resource) if to_spec else None
    token = project_token(context.store.state.identity)
    tags = [_tag(resource, run, token) for run in runs]
    now = context.clock.now()
    intents = [
        JobAttempt(
            number=run.number,
            tag=str(tag),
            spec_hash=resource.spec_hash,
            purpose=run.purpose,
            shard=run.prepared.shard,
            rerun=run.rerun,
            request_count=run.prepared.request_count,
            input_file=run.file_name,
            state=JobState.UNKNOWN,
            intent_at=now,
            request_keys_file=run.keys_ref,
        )
        for run, tag in zip(runs, tags, strict=True)
    ]
    replaced = {(i.number, i.shard, i.rerun) for i in intents}

    def add_intents(state: State) -> State:
        record = (
            record_for(state, resource, digests_ref) if to_spec else state.resources[resource.name]
        )
        kept = tuple(a for a in record.attempts if (a.number, a.shard, a.rerun) not in replaced)
        update: dict[str, object] = {"attempts": (*kept, *intents)}
        if input_record is not None:
            update["input"] = input_record
        return state.with_resource(record.model_copy(update=update))

    await context.store.update(add_intents)
    crash_point("intent-recorded")
    return list(zip(intents, tags, strict=True))


def _tag(resource: DesiredResource, run: _Run, token: str) -> IdentityTag:
    return IdentityTag(
        resource.name,
        resource.spec_hash,
        run.number,
        run.prepared.shard,
        run.rerun,
        project=token,
    )


async def _create_recorded(
    context: ApplyContext,
    resource: DesiredResource,
    run: _Run,
    intent: JobAttempt,
    tag: IdentityTag,
) -> None:
    """Create the job of a recorded intent, then record the job on it."""
    prepared = run.prepared
    job = await _create_job(context, resource, tag, run.file_name, prepared)
    crash_point("job-created")
    key = (intent.number, intent.shard, intent.rerun)
    now = intent.intent_at
    await context.store.update_record(resource.name, lambda record: with_job(record, key, job, now))
    crash_point("job-recorded")
    shard = f" shard {prepared.shard}" if prepared.shard is not None else ""
    if run.rerun:
        shard += f" run {run.rerun + 1}"
    context.emit(
        EventKind.STEP,
        resource.name,
        f"created {job.name} (attempt {run.number}{shard}, {prepared.request_count} request(s))",
    )


async def _keys_ref(context: ApplyContext, run: _Run) -> str | None:
    """Where the keys this job sends are stored. A partial run or a shard records them: results
    merge by them, and a shard that fails is run again alone from them."""
    prepared = run.prepared
    if (
        run.keys_ref is None
        and prepared.keys is not None
        and (run.purpose is not AttemptPurpose.FULL or prepared.shard is not None)
    ):
        return await asyncio.to_thread(store_request_keys, context.store.backend, prepared.keys)
    return run.keys_ref


async def _create_job(
    context: ApplyContext,
    resource: DesiredResource,
    tag: IdentityTag,
    file_name: str | None,
    prepared: PreparedInput,
) -> LiveJob:
    """The create call. An ambiguous failure (it may have reached the service) is resolved in
    this run: the job carrying `tag` is looked up a few times with backoff (a list may lag a
    create), and the create is sent again only once the service shows no such job -- at most
    `_AMBIGUOUS_CREATES` times in all, so a service that never answers still ends the run."""
    spec = resource.manifest.spec
    inline = (
        [dict(item) for item in prepared.inline_requests]
        if prepared.inline_requests is not None
        else None
    )
    for sent in range(1, _AMBIGUOUS_CREATES + 1):
        try:
            return await context.adapter.create_job(
                model=spec.model,
                task="embed" if spec.task is Task.EMBED else "generate",
                display_name=tag.display_name(spec.config.display_name),
                file_name=file_name,
                inline_requests=inline,
                batch_fields=batch_fields(spec.config.model_extra or {}),
            )
        except TransientServiceError as exc:
            if not exc.ambiguous:
                raise
            found = await _look_up_tagged(context, str(tag), exc)
            if found is not None:
                context.emit(
                    EventKind.STEP, resource.name, f"found {found.name} after an unclear create"
                )
                return found
            if sent == _AMBIGUOUS_CREATES:
                raise
            context.emit(
                EventKind.WARNING,
                resource.name,
                f"create failed unclearly ({exc}); the service shows no such job, so it is "
                "sent again",
            )
    raise AssertionError("unreachable: the last create returns or raises")


_AMBIGUOUS_CREATES = 4
"""Creates sent for one job when each fails unclearly and the service then shows no job."""

AMBIGUOUS_LOOKUP_DELAYS = (1.0, 2.0, 4.0)
"""Seconds before each look-up of a job whose create failed unclearly: a job made just before
the connection broke may take a moment to show in `batches.list`."""


async def _look_up_tagged(
    context: ApplyContext, tag: str, failure: TransientServiceError
) -> LiveJob | None:
    """The job carrying `tag`, looked for after each of `AMBIGUOUS_LOOKUP_DELAYS`; None once
    every look-up showed none. A look-up that cannot list raises `failure` (still unresolved:
    the next run adopts the job or creates it from the recorded intent)."""
    for delay in AMBIGUOUS_LOOKUP_DELAYS:
        await context.clock.sleep(delay * context.rng.uniform(0.75, 1.0))
        try:
            live = await context.adapter.snapshot(include_files=False)
        except ServiceError:
            raise failure from None
        for job in live.jobs.values():
            if job.display_name and job.display_name.endswith(tag):
                return job
    return None


async def _upload_input(
    context: ApplyContext, live: Live, resource: DesiredResource, prepared: PreparedInput
) -> tuple[str, InputRecord | None]:
    """Upload the input file, or reuse the one uploaded before if it is still there; with the
    input record to keep when the whole source went up as one file."""
    assert prepared.file is not None
    whole = prepared.keys is None and not resource.media
    record = context.store.state.resources.get(resource.name)
    if whole and record is not None and record.input is not None:
        previous = record.input
        if previous.sha256 == resource.source.sha256:
            reused = await _usable_file(context, live, previous.file_name)
            if reused is not None:
                return reused, None
    uploaded = await context.adapter.upload_file(
        prepared.file,
        display_name=f"rc-{resource.name}-{resource.source.sha256[:12]}",
        mime_type="jsonl",
    )
    crash_point("input-uploaded")
    context.emit(EventKind.STEP, resource.name, f"uploaded input as {uploaded.name}")
    if not whole:
        return uploaded.name, None
    return uploaded.name, InputRecord(
        sha256=resource.source.sha256,
        bytes=resource.source.bytes,
        request_count=resource.source.request_count,
        file_name=uploaded.name,
        uploaded_at=context.clock.now(),
        expires_at=uploaded.expiration_time,
    )


def _shard_max_bytes(resource: DesiredResource) -> int:
    """The manifest's `shards.max_bytes` in bytes (validation has already checked it parses)."""
    try:
        return parse_size(resource.manifest.spec.shards.max_bytes)
    except ValueError:
        return 0


def batch_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Service options a manifest's `config` carries besides display_name, in the REST spelling
    (`priority` stays `priority`; `some_field` becomes `someField`)."""
    return {camel(name): value for name, value in sorted(extra.items())}
