"""The maintain stage: keep the state in step with jobs apply did not just create.

Adopt (a tagged job whose create was never recorded), import (a job the user names), refresh
(copy live progress in), update (in-place changes: move or trim the results copy, or a new
priority set on the jobs still in progress), cancel and
forget (the resource left the manifests; `--prune` also deletes its service-side files).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from reconciler.apply.context import ApplyContext, crash_point
from reconciler.apply.events import EventKind
from reconciler.apply.outputs import WrittenResults, previous_results, read_results, write_results
from reconciler.apply.records import (
    bring_to_spec,
    digests_blob,
    record_for,
    record_live_states,
    with_job,
)
from reconciler.errors import ServiceError
from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import IdentityTag, parse_tag
from reconciler.manifests.desired import DesiredResource
from reconciler.plan.actions import Action, Reason
from reconciler.state.document import JobAttempt, JobState, ResourceRecord


async def adopt(context: ApplyContext, action: Action, live: Live) -> None:
    """Record the tagged jobs of `action` as the attempts their tags name."""
    resource = context.desired.resources.get(action.resource)
    jobs = [live.jobs[name] for name in action.job_names if name in live.jobs]
    if resource is not None:
        await bring_to_spec(context, resource)
    now = context.clock.now()

    def adopt_jobs(record: ResourceRecord) -> ResourceRecord:
        for job in jobs:
            tag = parse_tag(job.display_name)
            if tag is None:
                continue
            key = (tag.attempt, tag.shard, tag.rerun)
            if not any((a.number, a.shard, a.rerun) == key for a in record.attempts):
                spec_hash = resource.spec_hash if resource else record.spec_hash
                attempt = JobAttempt(
                    number=tag.attempt,
                    tag=str(tag),
                    spec_hash=spec_hash,
                    shard=tag.shard,
                    rerun=tag.rerun,
                    intent_at=job.create_time or now,
                )
                record = record.model_copy(update={"attempts": (*record.attempts, attempt)})
            record = with_job(record, key, job, job.create_time or now)
        return record

    await context.store.update_record(action.resource, adopt_jobs)
    context.emit(EventKind.STEP, action.resource, f"adopted {', '.join(action.job_names)}")


def imported_record(
    existing: ResourceRecord | None, resource: DesiredResource, job: LiveJob, now: datetime
) -> tuple[ResourceRecord, int]:
    """`existing` (or a new record) with `job` appended as its next attempt, brought to the
    desired spec; and that attempt's number. For `reconciler import`."""
    number = max((a.number for a in existing.attempts), default=0) + 1 if existing else 1
    attempt = JobAttempt(
        number=number,
        tag=str(IdentityTag(resource.name, resource.spec_hash, number)),
        spec_hash=resource.spec_hash,
        job_name=job.name,
        state=job.state,
        intent_at=job.create_time or now,
        created_at=job.create_time,
        updated_at=job.update_time,
        ended_at=job.end_time,
        output_file=job.output_file,
    )
    base = existing or ResourceRecord(name=resource.name, spec_hash=resource.spec_hash)
    record = base.model_copy(
        update={
            "spec_hash": resource.spec_hash,
            "replacing": resource.replacing_fields(),
            "in_place": resource.in_place_fields(),
            "attempts": (*base.attempts, attempt),
        }
    )
    return record, number


async def refresh(context: ApplyContext, action: Action, live: Live) -> None:
    await record_live_states(context, live, action.resource, action.job_names)
    await sync_fields(context, action.resource)


async def update(context: ApplyContext, action: Action) -> None:
    """Apply an in-place change: copy the results to a new output, or drop the lines of
    requests removed from the source; then record the desired spec."""
    resource = context.resource(action.resource)
    record = context.store.state.resources[action.resource]
    target = context.output(resource)
    results = record.results
    new_results = results
    if results is not None and (
        results.location != target.results_location
        or (action.request_changes is not None and action.request_changes.removed)
    ):
        keep = set(resource.source.key_digests) if resource.source.key_digests else None
        scratch = context.staging(resource.name)

        def copy() -> WrittenResults | None:
            with previous_results(results.location, context.project.root, scratch) as path:
                if path is None:
                    return None
                lines = read_results(path)
                if keep is not None:
                    lines = (line for line in lines if str(line.get("key")) in keep)
                return write_results(lines, target, scratch / "gcs")

        written = await asyncio.to_thread(copy)
        if written is not None:
            new_results = results.model_copy(
                update={
                    "location": written.location,
                    "sha256": written.sha256,
                    "bytes": written.bytes,
                    "succeeded": written.succeeded,
                    "failed": written.failed,
                }
            )
            context.emit(EventKind.STEP, resource.name, f"results copied to {written.location}")
    blob = await digests_blob(resource)
    digests_ref = blob.sha256 if blob is not None else None

    # Attempts keep the spec hash they ran under: the record's spec_hash moving to the
    # desired spec is what tells the planner these results now answer it (no re-run needed).
    def bring_up_to_date(record: ResourceRecord | None) -> ResourceRecord:
        brought = record_for(record, resource, digests_ref)
        return brought.model_copy(update={"results": new_results})

    await context.store.upsert_record(
        resource.name, bring_up_to_date, blobs=(blob,) if blob is not None else ()
    )
    context.emit(EventKind.STEP, resource.name, f"updated ({action.reason.text})")


async def set_priority(context: ApplyContext, action: Action, live: Live) -> None:
    """Set the desired priority on the pending or running jobs of `action` through the
    service's update call (no new job), then record their progress and the in-place fields.
    A job that ended meanwhile keeps the priority it ran with."""
    resource = context.resource(action.resource)
    spec = resource.manifest.spec
    priority = spec.job_priority or 0
    for job_name in action.job_names:
        if await context.adapter.set_job_priority(job_name, spec.task.value, priority):
            context.emit(EventKind.STEP, resource.name, f"priority of {job_name} set to {priority}")
        else:
            context.emit(EventKind.STEP, resource.name, f"{job_name} has ended: priority kept")
        crash_point("priority-set")
    await record_live_states(context, live, action.resource, action.job_names)
    # Only the in-place fields: the record's spec (and so its jobs' standing) is unchanged.
    in_place = resource.in_place_fields()
    await context.store.update_record(
        resource.name, lambda r: r.model_copy(update={"in_place": in_place})
    )


async def sync_fields(context: ApplyContext, name: str) -> None:
    """Bring the recorded in-place fields up to date (a no-op write bumps no serial)."""
    resource = context.desired.resources.get(name)
    if resource is None or name not in context.store.state.resources:
        return
    record = context.store.state.resources[name]
    if record.spec_hash != resource.spec_hash:
        return
    in_place = resource.in_place_fields()
    if record.in_place != in_place:
        await context.store.update_record(
            name, lambda r: r.model_copy(update={"in_place": in_place})
        )


async def cancel_jobs(
    context: ApplyContext, resource: str, job_names: Sequence[str], why: str | None = None
) -> None:
    """Cancel each job at the service, then record them all as cancelled (with `why`, e.g.
    "replaced: its job waited past policy.timeout", as the attempt's error)."""
    for job_name in job_names:
        await context.adapter.cancel_job(job_name)
        context.emit(EventKind.STEP, resource, f"cancelled {job_name}")
    ended_at = context.clock.now()

    def mark(record: ResourceRecord) -> ResourceRecord:
        attempts = tuple(
            a.model_copy(
                update={"state": JobState.CANCELLED, "ended_at": ended_at, "error": why or a.error}
            )
            if a.job_name in job_names
            else a
            for a in record.attempts
        )
        return record.model_copy(update={"attempts": attempts})

    if resource in context.store.state.resources:
        await context.store.update_record(resource, mark)


async def forget(context: ApplyContext, action: Action) -> None:
    """Drop the resource from the state (its results stay); with prune, delete its files."""
    record = context.store.state.resources.get(action.resource)
    if record is None:
        return
    if context.options.prune:
        files = {a.input_file for a in record.attempts if a.input_file}
        files |= {a.output_file for a in record.attempts if a.output_file}
        for file_name in sorted(f for f in files if f):
            try:
                await context.adapter.delete_file(file_name)
                context.emit(EventKind.STEP, action.resource, f"deleted {file_name}")
            except ServiceError as exc:
                context.emit(
                    EventKind.WARNING, action.resource, f"could not delete {file_name}: {exc}"
                )
    await context.store.forget(action.resource)
    where = f"; results stay at {record.results.location}" if record.results else ""
    done = "destroyed" if action.reason is Reason.DESTROYED else "forgotten"
    context.emit(EventKind.STEP, action.resource, f"{done}{where}")
