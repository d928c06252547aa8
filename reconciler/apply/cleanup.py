"""After collection: delete the service files an attempt no longer needs (`cleanup:` in
reconciler.yaml), and record what was deleted or could not be, so nothing is deleted twice.

Inputs reconciler uploaded go once every job that reads them has ended and the attempt's
results are collected; a later job needing the same input (a retry, an incremental re-run)
finds it gone and uploads it again (apply.sources). Results files go where the service allows:
it refuses ids over 40 characters (python-genai #1759, every `files/batch-...` it generates),
so those are recorded as kept, listed in the apply summary and by `status`, and left to expire
after 48 h. A failed delete never fails the resource: its results are already safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reconciler.apply.context import ApplyContext
from reconciler.apply.events import EventKind
from reconciler.errors import PermanentServiceError, ServiceError
from reconciler.state.document import JobAttempt, ResourceRecord


async def clean_after_collect(context: ApplyContext, name: str, number: int) -> None:
    """Delete the input and results files of attempt `number` of `name`, as configured."""
    settings = context.project.config.cleanup
    record = context.store.state.resources.get(name)
    if record is None:
        return
    group = record.attempt_group(number)
    if settings.inputs:
        for file_name in _inputs_done(context, group):
            await _delete_input(context, name, file_name)
    if settings.results:
        for attempt in group:
            if attempt.output_file and not attempt.output_deleted_at and not attempt.output_kept:
                await _delete_output(context, name, attempt.output_file)


def _inputs_done(context: ApplyContext, group: Sequence[JobAttempt]) -> list[str]:
    """The group's input files not deleted yet and read by no job that may still run (an
    upload is reused by later attempts while the service has it). The store indexes the inputs
    of open attempts: asking costs the group, not a pass over every record."""
    candidates = {a.input_file for a in group if a.input_file and a.input_deleted_at is None}
    return sorted(f for f in candidates if f and not context.store.input_in_use(f))


async def _delete_input(context: ApplyContext, name: str, file_name: str) -> None:
    size = _recorded_size(context.store.state.resources[name], file_name)
    try:
        await context.adapter.delete_file(file_name)
    except ServiceError as exc:
        context.emit(EventKind.WARNING, name, f"could not delete input {file_name}: {exc}")
        return
    context.storage.freed(size)
    now = context.clock.now()
    await context.store.update_record(name, lambda r: _mark_input(r, file_name, now))
    context.emit(EventKind.STEP, name, f"deleted input {file_name}")


async def _delete_output(context: ApplyContext, name: str, file_name: str) -> None:
    try:
        await context.adapter.delete_file(file_name)
    except PermanentServiceError as exc:
        # The service refuses to delete generated results files (ids over 40 characters).
        why = f"the service refused to delete it ({exc.status_code}); it expires after 48 h"
        await context.store.update_record(name, lambda r: _mark_output(r, file_name, kept=why))
        context.report.kept_files.append(f"{file_name} ({name}): {why}")
        context.emit(EventKind.WARNING, name, f"kept results file {file_name}: {why}")
        return
    except ServiceError as exc:
        context.emit(EventKind.WARNING, name, f"could not delete results {file_name}: {exc}")
        return
    now = context.clock.now()
    await context.store.update_record(name, lambda r: _mark_output(r, file_name, deleted=now))
    context.emit(EventKind.STEP, name, f"deleted results file {file_name}")


def _recorded_size(record: ResourceRecord, file_name: str) -> int:
    """The bytes of an uploaded input as the state recorded them (0 if it did not)."""
    source = record.input
    if source is None:
        return 0
    for shard in source.shards:
        if shard.file_name == file_name:
            return shard.bytes
    return source.bytes if source.file_name == file_name else 0


def _mark_input(record: ResourceRecord, file_name: str, when: datetime) -> ResourceRecord:
    attempts = tuple(
        a.model_copy(update={"input_deleted_at": when})
        if a.input_file == file_name and a.input_deleted_at is None
        else a
        for a in record.attempts
    )
    return record.model_copy(update={"attempts": attempts})


def _mark_output(
    record: ResourceRecord,
    file_name: str,
    *,
    deleted: datetime | None = None,
    kept: str | None = None,
) -> ResourceRecord:
    attempts = tuple(
        a.model_copy(update={"output_deleted_at": deleted, "output_kept": kept})
        if a.output_file == file_name
        else a
        for a in record.attempts
    )
    return record.model_copy(update={"attempts": attempts})
