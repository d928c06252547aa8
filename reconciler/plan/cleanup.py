"""Pure: which service files the state says are left to delete (`cleanup:` in reconciler.yaml).

After collecting an attempt, apply deletes the inputs no running job reads and the results
files the service lets go, and records each deletion (apply.cleanup); a results file the Files
API refuses to delete is recorded as left to expire with the results, and never listed here.
A run killed between collect and that record, or a delete that failed, leaves files the state
still calls present: the next apply deletes them. The plan lists them (`Plan.cleanup`), so
`plan` never says "no changes" while apply would delete something, and apply of a saved plan
deletes exactly what the plan listed. The predicates live here, not in apply, so the planner
reads them with no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence

from pydantic.dataclasses import dataclass

from reconciler.config import Cleanup
from reconciler.live.tags import project_tokens
from reconciler.live.wire import is_staged_input, refuses_delete
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.state.document import JobAttempt, State


class FileRole(enum.StrEnum):
    """What a file left to delete was to its job."""

    INPUT = "input"
    """An input file reconciler uploaded (`cleanup.inputs`)."""
    RESULTS = "results"
    """The results file the service wrote (`cleanup.results`)."""
    MEDIA = "media"
    """A local media file reconciler uploaded for the job's requests (`cleanup.inputs`)."""


@dataclass(frozen=True, slots=True)
class PendingDelete:
    """A service file apply will delete: a collected attempt's, not recorded as deleted."""

    resource: str
    attempt: int
    file_name: str
    role: FileRole


def owners(state: State) -> frozenset[str]:
    """The tokens this project's staged inputs are filed under (`<staging>/inputs/<token>/`):
    its project id's and its lineage's, as its jobs' tags carry."""
    return project_tokens(state.project, state.lineage)


def input_left(attempt: JobAttempt, owned: Collection[str]) -> str | None:
    """The attempt's uploaded input if it is not recorded as deleted. A source Vertex read in
    place (a BigQuery table, a `source.gcs` object) is the user's data: never a candidate; a
    `gs://` input is one only when staged in a folder of this project's (`owned`: `owners`)."""
    name = attempt.input_file
    if not name or attempt.input_deleted_at is not None or is_bigquery(name):
        return None
    if name.startswith("gs://") and not is_staged_input(name, owned):
        return None
    return name


def output_left(attempt: JobAttempt) -> str | None:
    """The attempt's results file if it is neither deleted nor kept, and the service would
    delete it. A BigQuery table is the results themselves (the job wrote the manifest's output
    there): never deleted. A file the Files API refuses to delete (`refuses_delete`: every
    results file it generates) is left to expire, not listed as a delete apply would send."""
    name = attempt.output_file
    if not name or attempt.output_deleted_at or attempt.output_kept or is_bigquery(name):
        return None
    return None if refuses_delete(name) else name


def media_left(attempt: JobAttempt) -> tuple[str, ...]:
    """The media uploads of the attempt not recorded as deleted."""
    return tuple(m.file_name for m in attempt.media if m.deleted_at is None)


def group_files_left(
    group: Sequence[JobAttempt], settings: Cleanup, owned: Collection[str]
) -> bool:
    """Whether an ended attempt group still has a file the settings delete (an input still read
    by another job is counted: the caller asks whether it is in use)."""
    if not group or not all(a.state.is_terminal for a in group):
        return False
    return any(
        (settings.inputs and (input_left(a, owned) or media_left(a)))
        or (settings.results and output_left(a))
        for a in group
    )


def inputs_in_use(state: State) -> frozenset[str]:
    """Input and media files an attempt whose job may still run reads (never deleted under
    it)."""
    return frozenset(
        name
        for record in state.resources.values()
        for a in record.attempts
        if not a.state.is_terminal
        for name in (a.input_file, *(m.file_name for m in a.media))
        if name
    )


def pending_cleanup(
    state: State, settings: Cleanup, targets: Collection[str] = ()
) -> tuple[PendingDelete, ...]:
    """Every file of a collected attempt that apply will delete, by resource and attempt (the
    same rule apply's sweep follows: `targets` restricts it as `--target` does)."""
    if not (settings.inputs or settings.results):
        return ()
    in_use = inputs_in_use(state) if settings.inputs else frozenset()
    owned = owners(state)
    pending: list[PendingDelete] = []
    for name in sorted(state.resources):
        record = state.resources[name]
        if record.results is None or (targets and name not in targets):
            continue
        for number in sorted(set(record.results.from_attempts)):
            group = record.attempt_group(number)
            if group_files_left(group, settings, owned):
                pending.extend(_group_pending(name, number, group, settings, in_use, owned))
    return tuple(pending)


def _group_pending(
    name: str,
    number: int,
    group: Iterable[JobAttempt],
    settings: Cleanup,
    in_use: frozenset[str],
    owned: frozenset[str],
) -> list[PendingDelete]:
    seen: set[str] = set()
    found: list[PendingDelete] = []
    for attempt in group:
        candidates: list[tuple[str, FileRole]] = []
        if settings.inputs and (file := input_left(attempt, owned)) and file not in in_use:
            candidates.append((file, FileRole.INPUT))
        if settings.inputs:
            media = (f for f in media_left(attempt) if f not in in_use)
            candidates.extend((file, FileRole.MEDIA) for file in media)
        if settings.results and (file := output_left(attempt)):
            candidates.append((file, FileRole.RESULTS))
        for file, role in candidates:
            if file not in seen:
                seen.add(file)
                found.append(PendingDelete(name, number, file, role))
    return found
