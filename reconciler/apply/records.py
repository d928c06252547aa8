"""How apply changes a resource's record: pure record transforms shared by the stages, and the
two state writes more than one stage makes (live states copied in, the spec brought up to date).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from reconciler.apply.context import ApplyContext
from reconciler.config import ProjectConfig
from reconciler.live.snapshot import Live, LiveJob
from reconciler.manifests.desired import DesiredResource
from reconciler.state.backend import Blob
from reconciler.state.document import ResourceRecord
from reconciler.state.request_keys import key_digests_blob

AttemptKey = tuple[int, int | None, int]
"""(attempt number, shard, rerun): what identifies one job's attempt within a record."""

_DIGESTS_ON_THE_LOOP = 1024
"""A key digest index up to this many keys is encoded on the event loop (~1 µs a key); a larger
one in a thread, so the loop keeps serving the other transfers."""


def service_base_url(config: ProjectConfig) -> str | None:
    """Where this project's jobs are created, as `JobAttempt.base_url` records it: `emulator`
    for an embedded emulator, the URL of any other endpoint without its credentials or query
    (the state must hold no secret), None for Google's own hosts."""
    endpoint = config.endpoint.strip()
    where = config.vertex.base_url if endpoint.lower() == "vertex" else endpoint
    if where is None or where.strip().lower() in ("gemini", "vertex"):
        return None
    if where.strip().lower() == "emulator":
        return "emulator"
    parts = urlsplit(where.strip())
    # The host and port as written (an IPv6 host keeps its brackets), without the user
    # information before the last `@`.
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def record_for(
    existing: ResourceRecord | None, resource: DesiredResource, digests_ref: str | None
) -> ResourceRecord:
    """The resource's record (`existing`, None: none yet) brought to the desired spec, keeping
    its history."""
    base = existing or ResourceRecord(name=resource.name, spec_hash=resource.spec_hash)
    return base.model_copy(
        update={
            "spec_hash": resource.spec_hash,
            "replacing": resource.replacing_fields(),
            "in_place": resource.in_place_fields(),
            # The digests of the source it is brought to, or none: an earlier source's would
            # let an incremental re-run keep answers to requests that changed in between.
            "key_digests_ref": digests_ref,
        }
    )


def with_job(
    record: ResourceRecord, key: AttemptKey, job: LiveJob, now: datetime
) -> ResourceRecord:
    """Fill the attempt `key` with the created or adopted job."""
    attempts = tuple(
        a.model_copy(
            update={
                "job_name": job.name,
                "state": job.state,
                "created_at": job.create_time or now,
                "updated_at": job.update_time,
                "ended_at": job.end_time,
                "output_file": job.output_file,
            }
        )
        if (a.number, a.shard, a.rerun) == key
        else a
        for a in record.attempts
    )
    return record.model_copy(update={"attempts": attempts})


def with_live_state(record: ResourceRecord, job: LiveJob) -> ResourceRecord:
    """The attempt that ran `job` with the job's current state, times and output file."""
    attempts = tuple(
        a.model_copy(
            update={
                "state": job.state,
                "updated_at": job.update_time or a.updated_at,
                "ended_at": job.end_time or a.ended_at,
                "output_file": job.output_file or a.output_file,
            }
        )
        if a.job_name == job.name
        else a
        for a in record.attempts
    )
    return record.model_copy(update={"attempts": attempts})


async def record_live_states(
    context: ApplyContext, live: Live, resource: str, job_names: Sequence[str]
) -> None:
    """Copy the live state of these jobs into their recorded attempts."""
    if resource not in context.store.state.resources:
        return

    def refresh(record: ResourceRecord) -> ResourceRecord:
        for name in job_names:
            job = live.jobs.get(name)
            if job is not None:
                record = with_live_state(record, job)
        return record

    await context.store.update_record(resource, refresh)


async def digests_blob(resource: DesiredResource) -> Blob | None:
    """The source's key digest index as a blob, for the state write that records its address
    (`StateStore.update(..., blobs=...)`); None if the source has none (inline sources)."""
    digests = resource.source.key_digests
    if not digests:
        return None
    if len(digests) <= _DIGESTS_ON_THE_LOOP:  # microseconds: less than a thread hop costs
        return key_digests_blob(digests)
    return await asyncio.to_thread(key_digests_blob, digests)


async def bring_to_spec(context: ApplyContext, resource: DesiredResource) -> None:
    """Record the desired spec (and its key digests) on the resource, creating the record."""
    blob = await digests_blob(resource)
    digests_ref = blob.sha256 if blob is not None else None
    await context.store.upsert_record(
        resource.name,
        lambda record: record_for(record, resource, digests_ref),
        blobs=(blob,) if blob is not None else (),
    )
