"""After collection: delete the service files an attempt no longer needs (`cleanup:` in
reconciler.yaml), and record what was deleted or could not be, so nothing is deleted twice.

Inputs reconciler uploaded go once every job that reads them has ended and the attempt's
results are collected; a later job needing the same input (a retry, an incremental re-run)
finds it gone and uploads it again (apply.sources). Results files go where the service allows:
the Files API refuses to delete ids over 40 characters (python-genai #1759), and every results
file it generates is one (`files/batch-<36-character job id>`), so no delete is sent for them:
the collect records each as left to expire (48 h) in the same write as the results
(`mark_left_to_expire`), the apply summary and `status` list them, and `plan` never shows them
as deletes. A failed delete never fails the resource: its results are already safe. A BigQuery
source or output table (Vertex) is the user's data, never a candidate.

The deletes run in the background (`clean_later`, apply.background), after the results are
durable and recorded: they hold no parallelism slot a download or create could use, and only
the run's end waits for the last of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.apply.context import ApplyContext, crash_point
from reconciler.apply.events import EventKind
from reconciler.config import Cleanup
from reconciler.errors import (
    PermanentServiceError,
    ReconcilerError,
    ServiceError,
    StateWriteLostError,
)
from reconciler.live.wire import refuses_delete
from reconciler.plan.cleanup import (
    PendingDelete,
    group_files_left,
    input_left,
    media_left,
    output_left,
    owners,
)
from reconciler.state.document import JobAttempt, ResourceRecord


@dataclass(frozen=True, slots=True)
class _Deleted:
    """What one delete did, to be recorded: the file, and when it went or why it was kept."""

    file_name: str
    is_input: bool
    at: datetime | None = None
    kept: str | None = None
    is_media: bool = False


LEFT_TO_EXPIRE = "undeletable (id over 40 characters); expires after 48 h"
"""What a results file the service would refuse to delete is recorded as (`output_kept`): kept
short, it is on every settled resource's line of the committed state (python-genai #1759)."""


def mark_left_to_expire(attempt: JobAttempt, settings: Cleanup) -> JobAttempt:
    """`attempt` with its results file recorded as left to expire, when `cleanup.results` would
    delete it but the Files API refuses to (`refuses_delete`). The collect records it with the
    results, in the same state write: no delete known to fail is sent, now or by a later run."""
    name = attempt.output_file
    if (
        not settings.results
        or not name
        or attempt.output_deleted_at is not None
        or attempt.output_kept is not None
        or not refuses_delete(name)
    ):
        return attempt
    return attempt.model_copy(update={"output_kept": LEFT_TO_EXPIRE})


def report_left_to_expire(context: ApplyContext, name: str, files: Sequence[str]) -> None:
    """Tell the user which results files stay at the service until they expire."""
    for file_name in files:
        # The expected outcome for every generated results file, so a step, not a warning:
        # the apply summary and `status` list them once.
        context.report.kept_files.append(f"{file_name} ({name})")
        context.emit(EventKind.STEP, name, f"results file {file_name} left to expire")


def clean_later(context: ApplyContext, name: str, number: int) -> None:
    """Hand the cleanup of a collected attempt to the background (apply.background): its
    results are durable and recorded, so nothing but the run's end waits for the deletes."""
    context.report.collected.add((name, number))

    async def clean() -> None:
        try:
            await clean_after_collect(context, name, number)
        except StateWriteLostError:
            raise  # the run stops, as when a stage loses a write
        except ReconcilerError as exc:
            # A failed cleanup never fails the resource: its results are safe. The sweep at
            # the run's end, or the next apply, finishes it.
            context.emit(EventKind.WARNING, name, f"cleanup of attempt {number} failed: {exc}")

    context.background.start(clean, context.options.parallelism)


async def clean_after_collect(context: ApplyContext, name: str, number: int) -> None:
    """Delete the input and results files of attempt `number` of `name`, as configured.

    The deletes go out together and what they did is recorded in one state write, after all
    of them: a crash before it leaves files recorded as present that are gone, which the next
    run's delete finds already done."""
    settings = context.project.config.cleanup
    context.report.collected.add((name, number))
    record = context.store.state.resources.get(name)
    if record is None:
        return
    group = record.attempt_group(number)
    inputs = _inputs_done(context, group) if settings.inputs else []
    outputs = [f for a in group if (f := output_left(a))] if settings.results else []
    media = settings.inputs and any(media_left(a) for a in group)
    if not inputs and not outputs and not media:
        return
    sizes = {file_name: _recorded_size(record, file_name) for file_name in inputs}
    done, media_done = await asyncio.gather(
        asyncio.gather(
            *(_delete_input(context, name, file_name) for file_name in inputs),
            *(_delete_output(context, name, file_name) for file_name in outputs),
        ),
        _delete_media(context, name, group) if media else _nothing(),
    )
    deleted = [d for d in (*done, *media_done) if d is not None]
    if not deleted:
        return
    await context.store.update_record(name, lambda r: _mark(r, deleted))
    for item in deleted:
        if item.is_media:
            context.emit(EventKind.STEP, name, f"deleted media {item.file_name}")
        elif item.is_input:
            context.storage.freed(sizes[item.file_name])
            context.emit(EventKind.STEP, name, f"deleted input {item.file_name}")
        elif item.kept is not None:
            context.report.kept_files.append(f"{item.file_name} ({name}): {item.kept}")
            context.emit(
                EventKind.WARNING, name, f"kept results file {item.file_name}: {item.kept}"
            )
        else:
            context.emit(EventKind.STEP, name, f"deleted results file {item.file_name}")


async def clean_what_was_left(context: ApplyContext, planned: Sequence[PendingDelete]) -> None:
    """Finish cleanups an earlier run left, as the plan listed them (`Plan.cleanup`): files of
    collected attempts that are not recorded as deleted or kept (that run was killed between a
    delete and its record, or before the delete; or a delete failed). Only the attempts the
    plan names, and those this run collected (whose deletes failed), are swept: apply deletes
    nothing its plan did not show or approve; one cleaned since makes no call; a file already
    gone counts as deleted (`delete_file` is idempotent)."""
    settings = context.project.config.cleanup
    if not (settings.inputs or settings.results):
        return
    state = context.store.state
    owned = owners(state)
    pairs = {(p.resource, p.attempt) for p in planned} | context.report.collected
    left = sorted(
        (name, number)
        for name, number in pairs
        if name in state.resources
        and name not in context.report.failures
        and group_files_left(state.resources[name].attempt_group(number), settings, owned)
    )
    semaphore = asyncio.Semaphore(max(1, context.options.parallelism))

    async def clean(name: str, number: int) -> None:
        async with semaphore:
            await clean_after_collect(context, name, number)

    async with asyncio.TaskGroup() as group:
        for name, number in left:
            group.create_task(clean(name, number))


def _inputs_done(context: ApplyContext, group: Sequence[JobAttempt]) -> list[str]:
    """The group's input files not deleted yet and read by no job that may still run (an
    upload is reused by later attempts while the service has it). The store indexes the inputs
    of open attempts: asking costs the group, not a pass over every record."""
    owned = owners(context.store.state)
    candidates = {f for a in group if (f := input_left(a, owned))}
    return sorted(f for f in candidates if not context.store.input_in_use(f))


async def _nothing() -> list[_Deleted]:
    return []


async def _delete_media(
    context: ApplyContext, name: str, group: Sequence[JobAttempt]
) -> list[_Deleted]:
    """Delete the group's media uploads that no job that may still run references and no
    create of this run has claimed, under the media lock (a create never picks an upload that
    is being deleted, and the run's later creates upload the content again)."""
    media = context.media
    async with media.lock:
        names = sorted({f for a in group for f in media_left(a)})
        free = [
            f
            for f in names
            if not context.store.input_in_use(f)
            and media.claimed[f] <= 0
            and f not in media.deleted
        ]
        done = await asyncio.gather(*(_delete_input(context, name, f) for f in free))
        deleted = [replace(d, is_media=True) for d in done if d is not None]
        for item in deleted:
            media.forget(item.file_name)
        # Deleted earlier in this run under another resource's record: record it here too.
        deleted += [
            _Deleted(f, is_input=True, at=context.clock.now(), is_media=True)
            for f in names
            if f in media.deleted and f not in free
        ]
    return deleted


async def _delete_input(context: ApplyContext, name: str, file_name: str) -> _Deleted | None:
    try:
        await context.adapter.delete_file(file_name)
    except ServiceError as exc:
        context.emit(EventKind.WARNING, name, f"could not delete input {file_name}: {exc}")
        return None
    crash_point("input-deleted")
    return _Deleted(file_name, is_input=True, at=context.clock.now())


async def _delete_output(context: ApplyContext, name: str, file_name: str) -> _Deleted | None:
    try:
        await context.adapter.delete_file(file_name)
    except PermanentServiceError as exc:
        # Refused for a reason `refuses_delete` does not know: recorded, never sent again.
        why = f"the service refused to delete it ({exc.status_code}); it expires after 48 h"
        return _Deleted(file_name, is_input=False, kept=why)
    except ServiceError as exc:
        context.emit(EventKind.WARNING, name, f"could not delete results {file_name}: {exc}")
        return None
    crash_point("results-file-deleted")
    return _Deleted(file_name, is_input=False, at=context.clock.now())


def _recorded_size(record: ResourceRecord, file_name: str) -> int:
    """The bytes of an uploaded input as the state recorded them (0 if it did not)."""
    source = record.input
    if source is None:
        return 0
    for shard in source.shards:
        if shard.file_name == file_name:
            return shard.bytes
    return source.bytes if source.file_name == file_name else 0


def _mark(record: ResourceRecord, deleted: Sequence[_Deleted]) -> ResourceRecord:
    """`record` with each attempt's input and results files marked as `deleted` says."""
    inputs = {d.file_name: d for d in deleted if d.is_input and not d.is_media}
    outputs = {d.file_name: d for d in deleted if not d.is_input}
    media = {d.file_name: d for d in deleted if d.is_media}

    def marked(attempt: JobAttempt) -> JobAttempt:
        update: dict[str, object] = {}
        if any(m.file_name in media and m.deleted_at is None for m in attempt.media):
            update["media"] = tuple(
                m.model_copy(update={"deleted_at": media[m.file_name].at})
                if m.file_name in media and m.deleted_at is None
                else m
                for m in attempt.media
            )
        gone = inputs.get(attempt.input_file or "")
        if gone is not None and attempt.input_deleted_at is None:
            update["input_deleted_at"] = gone.at
        out = outputs.get(attempt.output_file or "")
        if out is not None:
            update["output_deleted_at"] = out.at
            update["output_kept"] = out.kept
        return attempt.model_copy(update=update) if update else attempt

    return record.model_copy(update={"attempts": tuple(marked(a) for a in record.attempts)})
