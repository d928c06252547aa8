"""The create stage: turn a create/replace/resubmit/recreate action into jobs at the service.

For each job (one per shard): prepare its input, upload it (or reuse the upload still at the
service), record the intent, create the job, record the job. The intent is saved before the
create call and carries the job's identity tag, so a crash between the two is healed by
adoption (the tagged job is found), never by a second create.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.apply.context import ApplyContext, crash_point
from reconciler.apply.events import EventKind, Phase
from reconciler.apply.inputs import PreparedInput, prepare_inputs
from reconciler.apply.maintain import adopt
from reconciler.apply.records import (
    bring_to_spec,
    digests_blob,
    record_for,
    record_live_states,
    service_base_url,
    with_job,
)
from reconciler.apply.sources import (
    keys_to_run,
    media_records,
    release_media,
    shard_input,
    shard_max_bytes,
    upload_input,
    upload_media,
    usable_file,
)
from reconciler.errors import ServiceError, StateError, TransientServiceError
from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import IdentityTag, project_token
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.model import BatchJobSpec, Task
from reconciler.manifests.remote import remote_source
from reconciler.plan.actions import Action, ActionKind, Reason
from reconciler.state.backend import Blob
from reconciler.state.document import (
    AttemptPurpose,
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
)
from reconciler.state.request_keys import request_keys_blob


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
    model: str | None = None
    """The model to run on when it is not the manifest's (policy.fallback_model)."""
    keys_blob: Blob | None = None
    """The request keys it sends, still to store (with its intent, in the same commit)."""


async def create(context: ApplyContext, action: Action, live: Live) -> None:
    """Create the jobs of `action`'s next attempt (`_create`); the media uploads it claimed are
    released however it ends (its recorded intents protect them from cleanup from then on)."""
    claims: list[str] = []
    try:
        await _create(context, action, live, claims)
    finally:
        release_media(context, claims)


async def _create(context: ApplyContext, action: Action, live: Live, claims: list[str]) -> None:
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
    # Another model than the manifest's only for a replacement on policy.fallback_model.
    model = action.model if action.model != resource.manifest.spec.model else None
    if action.reason is Reason.PREVIOUS_CREATE_LOST and action.job_names:
        # The lost shards' siblings that reached the service are adopted first, so only the
        # lost ones are created again.
        await adopt(context, action, live)
    elif action.kind is not ActionKind.REPLACE and action.job_names:
        # A resubmit follows jobs that ended badly: record how they ended first.
        await record_live_states(context, live, action.resource, action.job_names)
    lost = _lost_intents(context, resource.name, number, action.reason)
    if action.shards_to_create or lost:
        again = action.shards_to_create or lost
        await _rerun_shards(context, live, resource, number, purpose, again, claims)
        return
    only_keys = await keys_to_run(context, resource, purpose)
    if only_keys is not None and not only_keys:
        # Nothing to realise: the results already stand for the desired spec.
        await bring_to_spec(context, resource)
        context.emit(EventKind.WARNING, resource.name, "no request needs a run; nothing created")
        return
    context.phase(resource.name, Phase.PREPARING)
    remote = remote_source(resource)
    if remote is not None:
        # Read by Vertex in place (`source.gcs`, `source.bigquery`): nothing to prepare,
        # split or upload.
        run = _Run(number, purpose, PreparedInput(None, 0, None), file_name=remote, model=model)
        intents = await _record_intents(context, resource, [run], input_record=None, to_spec=True)
        await _create_recorded(context, resource, run, *intents[0])
        return
    claims.extend(await upload_media(context, live, resource))
    staging = context.staging(resource.name) / f"attempt-{number}"
    inputs = await asyncio.to_thread(
        prepare_inputs,
        resource,
        context.project.root,
        staging,
        shards=max(1, action.jobs),
        only_keys=only_keys,
        media_uris=context.media.uris,
        max_bytes=shard_max_bytes(resource),
    )
    if action.jobs and len(inputs) > action.jobs:
        context.emit(
            EventKind.WARNING,
            resource.name,
            f"split into {len(inputs)} jobs, not the {action.jobs} planned: its requests vary "
            "in size, and no input file may exceed shards.max_bytes",
        )
    uploads = await asyncio.gather(
        *(
            _upload_run(context, live, resource, _Run(number, purpose, p, model=model))
            for p in inputs
        )
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
    claims: list[str],
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
    context.phase(resource.name, Phase.PREPARING)
    claims.extend(await upload_media(context, live, resource))
    staging = context.staging(resource.name) / f"attempt-{number}-rerun"
    runs = []
    for index in shards:
        previous = group[index]
        # A lost intent's tag is carried by no job, so it is reused; otherwise a new rerun.
        rerun = previous.rerun if previous.is_intent else previous.rerun + 1
        reused = await usable_file(context, live, previous.input_file)
        if reused is not None and previous.request_count is not None:
            prepared = PreparedInput(index, previous.request_count, None)
        else:
            reused = None
            prepared = await shard_input(context, resource, previous, len(group), staging)
        run = _Run(
            number,
            purpose,
            prepared,
            rerun,
            reused,
            previous.request_keys_file,
            model=previous.model,
        )
        runs.append((await _upload_run(context, live, resource, run))[0])
    intents = await _record_intents(context, resource, runs, input_record=None, to_spec=False)
    await asyncio.gather(
        *(_create_recorded(context, resource, r, *i) for r, i in zip(runs, intents, strict=True))
    )
    shutil.rmtree(staging, ignore_errors=True)


async def _upload_run(
    context: ApplyContext, live: Live, resource: DesiredResource, run: _Run
) -> tuple[_Run, InputRecord | None]:
    """`run` with its input at the service and its request keys stored; the input record when
    the whole source went up as one file (recorded with the intents, not before them)."""
    prepared = run.prepared
    input_record = None
    file_name = run.file_name
    if file_name is None and prepared.file is not None:
        file_name, input_record = await upload_input(context, live, resource, prepared)
    keys_blob = await _keys_blob(run)
    keys_ref = keys_blob.sha256 if keys_blob is not None else run.keys_ref
    return replace(run, file_name=file_name, keys_ref=keys_ref, keys_blob=keys_blob), input_record


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
    # The digest index rides in the intents' write (one group commit), not a write of its own.
    blob = await digests_blob(resource) if to_spec else None
    digests_ref = blob.sha256 if blob is not None else None
    token = project_token(context.store.state.identity)
    tags = [_tag(resource, run, token) for run in runs]
    now = context.clock.now()
    media = media_records(context, resource)
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
            model=run.model,
            endpoint=context.adapter.endpoint_kind,
            base_url=service_base_url(context.project.config),
            media=media,
        )
        for run, tag in zip(runs, tags, strict=True)
    ]
    replaced = {(i.number, i.shard, i.rerun) for i in intents}

    def add_intents(existing: ResourceRecord | None) -> ResourceRecord:
        if to_spec:
            record = record_for(existing, resource, digests_ref)
        elif existing is None:
            raise KeyError(resource.name)
        else:
            record = existing
        kept = tuple(a for a in record.attempts if (a.number, a.shard, a.rerun) not in replaced)
        update: dict[str, object] = {"attempts": (*kept, *intents)}
        if input_record is not None:
            update["input"] = input_record
        return record.model_copy(update=update)

    blobs = [b for b in (blob, *(run.keys_blob for run in runs)) if b is not None]
    await context.store.upsert_record(resource.name, add_intents, blobs=blobs)
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
    context.phase(resource.name, Phase.CREATING)
    job = await _create_job(context, resource, tag, run, prepared)
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
    running = job.state is JobState.RUNNING
    context.phase(resource.name, Phase.RUNNING if running else Phase.PENDING)


async def _keys_blob(run: _Run) -> Blob | None:
    """The keys this job sends, to store with its intent (None: none to store, or stored
    already). A partial run or a shard records them: results merge by them, and a shard that
    fails is run again alone from them."""
    prepared = run.prepared
    if (
        run.keys_ref is None
        and prepared.keys is not None
        and (run.purpose is not AttemptPurpose.FULL or prepared.shard is not None)
    ):
        return await asyncio.to_thread(request_keys_blob, prepared.keys)
    return None


async def _create_job(
    context: ApplyContext,
    resource: DesiredResource,
    tag: IdentityTag,
    run: _Run,
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
                model=run.model or spec.model,
                task="embed" if spec.task is Task.EMBED else "generate",
                display_name=tag.display_name(spec.config.display_name),
                file_name=run.file_name,
                inline_requests=inline,
                batch_fields=batch_fields(spec),
                # A BigQuery output is written by the job itself (Vertex); others are copied.
                destination=spec.output if is_bigquery(spec.output) else None,
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


def batch_fields(spec: BatchJobSpec) -> dict[str, Any]:
    """Fields of the REST batch resource the SDK's create config has no slot for, in the REST
    spelling: `priority` when the manifest sets it (else the service's default, 0)."""
    priority = spec.job_priority
    return {} if priority is None else {"priority": priority}
