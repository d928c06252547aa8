"""Forward migration of older state documents to the current `FORMAT_VERSION`.

A migration is a pure function from the raw JSON mapping of version N to that of version N+1.
`migrate` chains them, so a document from any supported older version loads; a document from a
newer version is refused, because an older reconciler rewriting it would silently drop whatever
the newer one recorded (possibly the only record of a paid, running job).

Version 1 is the baseline. Version 2 records, per job attempt, which rerun of its shard it is
(`rerun`) and how many requests it sends (`request_count`), so a failed shard can be resubmitted
alone. Version 3 records the project id the state belongs to (`project`), tombstones of destroyed or
forgotten resources (`tombstones`), so their jobs are never adopted again, and per attempt why
a succeeded job's results are unusable (`results_unusable`). Version 4 records per attempt the
endpoint it ran on (`endpoint`) and, once collected, the tokens its results reported (`usage`,
with the model they were billed on: `usage.model`, an optional field of a later release), their
cost (`cost_usd`) and when (`collected_at`); later releases of version 4 add, as optional
fields, which service files apply deleted after collecting (`input_deleted_at`,
`output_deleted_at`) or could not delete (`output_kept`). Version 5 changes the encoding, not the
fields: one record per line, each without its `name` (its key) and without fields at their
defaults (see `state.codec`). A record may still spell its name out; it must equal its key. The
PostgreSQL backend stores version 5 as one row per record (`state.postgres`). Version 6 moves
each record's applied spec, input and key digest address (`replacing`, `in_place`, `input`,
`key_digests_ref`) into a content-addressed blob its line refers to (`applied`), stores times
to the second, and leaves out attempt fields decoding derives (see `state.stored_form`); a
record may still spell all of these out, so a version 5 document is a valid version 6 one and
is rewritten in the new form on the next write. Version 7 records per attempt where the job was
created when that was not Google's own host (`base_url`: `emulator`, or an endpoint URL), so a
reader of the state can tell an emulator's jobs from the service's; earlier attempts did not
record it. Version 7 also records per attempt the media uploads its requests reference
(`media`), which version 6 never recorded (they were left to expire).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.errors import StateError
from reconciler.state.document import FORMAT_VERSION

RawDocument = dict[str, Any]
Migration = Callable[[RawDocument], RawDocument]


def _v1_to_v2(doc: RawDocument) -> RawDocument:
    """Every attempt so far was its shard's first run and its request count was not recorded:
    exactly what the new fields' defaults say, so only the version moves."""
    return {**doc, "format_version": 2}


def _v2_to_v3(doc: RawDocument) -> RawDocument:
    """No project id was recorded and nothing was tombstoned: the new fields' defaults. Jobs of
    resources forgotten before version 3 keep tags without a project; those are adopted only
    where the state itself records the intent that made them (see live.tags)."""
    return {**doc, "format_version": 3}


def _v3_to_v4(doc: RawDocument) -> RawDocument:
    """Every attempt so far ran on the Gemini Developer API (`endpoint` None means exactly that)
    and no usage was recorded: the new fields' defaults. Nor had apply deleted any input or
    results file after collecting (`input_deleted_at`, `output_deleted_at`, `output_kept`:
    optional fields of version 4 whose defaults say so)."""
    return {**doc, "format_version": 4}


def _v4_to_v5(doc: RawDocument) -> RawDocument:
    """A version 4 record spells out its name and every default; version 5 allows both and
    needs neither, so the document is already a valid version 5 one."""
    return {**doc, "format_version": 5}


V6_DERIVED = (
    "updated_at",
    "created_at",
    "output_file",
    "input_file",
    "request_count",
    "collected_at",
    "endpoint",
)
"""The attempt fields version 6 derives where a record leaves them out (`state.stored_form`);
version 5 left them out only at their default, None."""


def _v5_to_v6(doc: RawDocument) -> RawDocument:
    """Version 6 reads a record's details spelled out as well as from its blob, but a field it
    leaves out means "derived" where version 5's meant "default": every such field a version 5
    record left out is spelled out at its default (None, or no attempts for `from_attempts`)."""
    resources = doc.get("resources")
    if not isinstance(resources, dict):
        return {**doc, "format_version": 6}
    migrated = {}
    for name, record in resources.items():
        if isinstance(record, dict):
            record = _v6_record(record)
        migrated[name] = record
    return {**doc, "format_version": 6, "resources": migrated}


def _v6_record(record: RawDocument) -> RawDocument:
    record = dict(record)
    results = record.get("results")
    if isinstance(results, dict):
        record["results"] = {"from_attempts": [], **results}
    attempts = record.get("attempts")
    if isinstance(attempts, list):
        record["attempts"] = [_v6_attempt(a) if isinstance(a, dict) else a for a in attempts]
    return record


def _v6_attempt(attempt: RawDocument) -> RawDocument:
    attempt = {**dict.fromkeys(V6_DERIVED), **attempt}
    usage = attempt.get("usage")
    if isinstance(usage, dict):
        attempt["usage"] = {"model": None, **usage}
    return attempt


def _v6_to_v7(doc: RawDocument) -> RawDocument:
    """No attempt recorded where it was created: `base_url` None says "Google's host, or not
    recorded", which is all a version 6 document knows."""
    return {**doc, "format_version": 7}


MIGRATIONS: Mapping[int, Migration] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
}
"""Migration from version N (the key) to N+1. Each must set `format_version` to N+1."""


class StateFormatError(StateError):
    """The document is not a state document this reconciler can read (corrupt or unreadable)."""


def document_version(raw: Mapping[str, Any], *, source: str) -> int:
    """The `format_version` of a raw document.

    Raises:
        StateFormatError: the field is missing or not an integer.
    """
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StateFormatError(f"{source} is not a reconciler state: no integer `format_version`")
    return version


def migrate(
    raw: RawDocument,
    *,
    source: str,
    steps: Mapping[int, Migration] = MIGRATIONS,
    current: int = FORMAT_VERSION,
) -> RawDocument:
    """Bring a raw document up to version `current` by chaining `steps`.

    Args:
        raw: the decoded JSON object; it is not modified.
        source: where the document came from, for messages (never a URL with a password).
        steps: the migration registry (tests pass a synthetic one to prove the mechanism).
        current: the version this reconciler writes.

    Raises:
        StateError: the document is newer than `current` (upgrade reconciler), or no migration
            leads from its version to `current`.
    """
    version = document_version(raw, source=source)
    if version > current:
        raise StateError(
            f"{source} has state format version {version}, newer than this reconciler "
            f"supports ({current}); it was written by a newer reconciler",
            hint="upgrade reconciler; an older one must not rewrite a newer state",
        )
    doc = dict(raw)
    while version < current:
        step = steps.get(version)
        if step is None:
            raise StateFormatError(
                f"{source} has state format version {version}, and no migration to version "
                f"{version + 1} exists"
            )
        doc = step(doc)
        new_version = document_version(doc, source=source)
        if new_version != version + 1:
            # A step that forgets to bump the version would loop forever or skip a step.
            raise StateFormatError(
                f"migration of {source} from format version {version} produced version "
                f"{new_version}, expected {version + 1}"
            )
        version = new_version
    return doc
