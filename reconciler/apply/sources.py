"""What a create sends: inputs prepared or rebuilt for a shard, uploads reused while the service
still has them, media uploaded once per run, and the keys a partial attempt runs.

Split from `apply.create`, which records intents and creates jobs; nothing here writes the state.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import assert_never

from reconciler.apply.context import ApplyContext, crash_point
from reconciler.apply.events import EventKind, Phase
from reconciler.apply.inputs import PreparedInput, prepare_inputs
from reconciler.apply.outputs import previous_results, read_results
from reconciler.errors import StateError
from reconciler.live.snapshot import Live
from reconciler.live.tags import project_token
from reconciler.manifests.desired import DesiredResource, MediaRef
from reconciler.plan.cost import parse_size
from reconciler.plan.limits import resolve_limits
from reconciler.state.document import (
    AttemptPurpose,
    InputRecord,
    JobAttempt,
    MediaUpload,
    ResourceRecord,
)
from reconciler.state.request_keys import load_key_digests, load_request_keys

_UPLOAD_REUSE_MARGIN = timedelta(hours=2)
"""An uploaded input is reused only if it outlives the job's likely queue time by this much."""


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


async def usable_file(context: ApplyContext, live: Live, file_name: str | None) -> str | None:
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


async def keys_to_run(
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
            recorded = await asyncio.to_thread(
                load_key_digests, context.store.backend, state, (resource.name,)
            )
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


def media_display_name(token: str, sha256: str) -> str:
    """The display name of a media upload: the project's token and the content's digest, so
    an upload a killed run never recorded is found again by the next run that needs it."""
    return f"rc-media-{token}-{sha256[:12]}"


async def upload_media(context: ApplyContext, live: Live, resource: DesiredResource) -> list[str]:
    """Have every local media file a request references at the service, and claim it for this
    create (`MediaUploads.claimed`): the claimed names, for `release_media` once the intents are
    recorded.

    Once per content per run; an upload still at the service (this project's display name,
    active, of the same size, not expiring before the job likely runs: Developer API uploads
    expire after 48 h) is referenced again rather than uploaded twice, recorded or not. Vertex
    stages uploads content-addressed, so uploading again finds the object there."""
    media = context.media
    claimed: list[str] = []
    async with media.lock:
        for item in resource.media:
            current = media.uploads.get(item.path)
            if current is None or not _lasts(context, current.expires_at):
                current = await _media_upload(context, live, resource.name, item)
                media.uploads[item.path] = current
                media.mime[item.path] = item.mime_type
            media.claimed[current.file_name] += 1
            claimed.append(current.file_name)
    return claimed


def release_media(context: ApplyContext, claimed: list[str]) -> None:
    """A create recorded its intents (which keep its media from cleanup), or gave up: its
    claims on this run's media uploads end."""
    for file_name in claimed:
        context.media.claimed[file_name] -= 1


def media_records(context: ApplyContext, resource: DesiredResource) -> tuple[MediaUpload, ...]:
    """The media uploads the intents of `resource` record (claimed by `upload_media`)."""
    uploads = context.media.uploads
    found = {
        uploads[i.path].file_name: uploads[i.path] for i in resource.media if i.path in uploads
    }
    return tuple(found[name] for name in sorted(found))


def _lasts(context: ApplyContext, expires_at: datetime | None) -> bool:
    return expires_at is None or expires_at > context.clock.now() + _UPLOAD_REUSE_MARGIN


async def _media_upload(
    context: ApplyContext, live: Live, name: str, item: MediaRef
) -> MediaUpload:
    await context.store.store_identity()  # the upload is filed under it
    display_name = media_display_name(project_token(context.store.state.identity), item.sha256)
    for found in live.files.values():
        if (
            found.display_name == display_name
            and found.size_bytes == item.bytes
            and found.state == "ACTIVE"
            and found.name not in context.media.deleted
            and _lasts(context, found.expiration_time)
        ):
            return MediaUpload(
                file_name=found.name,
                uri=found.uri or found.name,
                sha256=item.sha256,
                expires_at=found.expiration_time,
            )
    uploaded = await context.adapter.upload_file(
        context.project.root / item.path,
        display_name=display_name,
        mime_type=item.mime_type,
        owner=project_token(context.store.state.identity),
    )
    crash_point("media-uploaded")
    context.media.deleted.discard(uploaded.name)  # Vertex: the same object, staged again
    context.emit(EventKind.STEP, name, f"uploaded {item.path} as {uploaded.name}")
    return MediaUpload(
        file_name=uploaded.name,
        uri=uploaded.uri or uploaded.name,
        sha256=item.sha256,
        expires_at=uploaded.expiration_time,
    )


async def upload_input(
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
            reused = await usable_file(context, live, previous.file_name)
            if reused is not None:
                return reused, None
    n_bytes = prepared.file.stat().st_size if prepared.file else 0  # a stat: no thread hop
    await context.store.store_identity()  # the upload is filed under it
    async with context.storage.reserve(
        context.adapter,
        resolve_limits(context.project.config),
        context.store.state,
        live,
        n_bytes=n_bytes,
        frees=context.project.config.cleanup.inputs,
    ):
        uploaded = await context.adapter.upload_file(
            prepared.file,
            display_name=f"rc-{resource.name}-{resource.source.sha256[:12]}",
            mime_type="jsonl",
            progress=context.transfer_progress(resource.name, Phase.UPLOADING, str(prepared.file)),
            owner=project_token(context.store.state.identity),
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


def shard_max_bytes(resource: DesiredResource) -> int:
    """The manifest's `shards.max_bytes` in bytes, capped at the endpoint's limit when unset
    (`DesiredResource.shards`; validation has already checked it parses)."""
    try:
        return parse_size(resource.shards.max_bytes)
    except ValueError:
        return 0
