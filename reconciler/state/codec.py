"""State <-> bytes: the one canonical encoding both backends store.

The document is JSON: the top-level fields one per line in sorted order, and each resource's
record on a line of its own under `resources` (by sorted name), as compact JSON with sorted keys.
A change to one resource changes one line, so the file diffs well in git; equal documents
always encode to equal bytes (the backends rely on that to skip writes).

A record leaves out its name (the key it is filed under says it), every field that holds its
default value, and what decoding derives again; its applied spec and input live in a
content-addressed details blob beside the state (`state.stored_form` says which fields go
where). A future version that changes a default must migrate documents that relied on the old
one. A document refers to blobs, so whoever stores a record stores its blob first
(`changed_records(...).blobs`, `state_blobs`); `self_contained` spells them out instead.

Decoding migrates older format versions, reads the details blobs through the caller's
`BlobSource` and validates; it never returns a half-read document.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import ValidationError

from reconciler.jsonsafe import JsonDuplicateKeyError, JsonLimitError, loads_bounded
from reconciler.state.document import ResourceRecord, State
from reconciler.state.integrity import check_integrity
from reconciler.state.migrations import StateFormatError, migrate
from reconciler.state.stored_form import (
    REF_FIELD,
    Blob,
    BlobSource,
    expand_records,
    no_blobs,
    stored_form,
)

# Apply writes the whole document after every group of steps, but a step changes one record.
# Records are immutable and unchanged ones are carried over as the same objects, so each one's
# encoded line is cached by identity (a weak reference evicts the entry when the record dies,
# before its id can be reused): a write then joins cached bytes instead of re-encoding every
# record, and the PostgreSQL backend sends exactly the lines that are new.
_Entry = tuple[weakref.ref[ResourceRecord], bytes, bytes, Blob | None]
_records: dict[int, _Entry] = {}
"""Per live record: (weak reference, its stored JSON, its document line with indent and name,
its details blob)."""


def _cached(record: ResourceRecord) -> _Entry:
    key = id(record)
    hit = _records.get(key)
    if hit is not None and hit[0]() is record:
        return hit
    dumped, blob = stored_form(record)
    stored = msgspec.json.encode(dumped, order="sorted")
    line = b"    " + msgspec.json.encode(record.name) + b": " + stored + b",\n"
    entry = (weakref.ref(record, lambda _ref: _records.pop(key, None)), stored, line, blob)
    _records[key] = entry
    return entry


def _line(key: str, record: ResourceRecord) -> bytes:
    """The record's document line, filed under `key`."""
    if key == record.name:
        return _cached(record)[2]
    return b"    " + msgspec.json.encode(key) + b": " + stored_record(key, record) + b",\n"


def stored_record(key: str, record: ResourceRecord) -> bytes:
    """`encode_record`, for the record filed under `key`. A record under another key than its
    name (only a hand-built or damaged state) spells its name out, so decoding refuses it
    rather than filing it anew under its name."""
    if key == record.name:
        return _cached(record)[1]
    return msgspec.json.encode({**json.loads(_cached(record)[1]), "name": record.name})


def encode_record(record: ResourceRecord) -> bytes:
    """One record as stored: compact JSON, sorted keys, without its name, default and derived
    fields, its details replaced by their blob's address (see `state.stored_form`)."""
    return _cached(record)[1]


def record_blob(record: ResourceRecord) -> Blob | None:
    """The details blob the record's stored form refers to (None: it has no details). A write
    stores it before (or with) the line that refers to it."""
    return _cached(record)[3]


def state_blobs(state: State) -> dict[str, Blob]:
    """Every details blob the document refers to, by address (records may share one)."""
    blobs: dict[str, Blob] = {}
    for record in state.resources.values():
        blob = _cached(record)[3]
        if blob is not None:
            blobs[blob.sha256] = blob
    return blobs


def self_contained(state: State) -> bytes:
    """The document with every record's details spelled out instead of referred to (what
    `state pull` prints): it decodes without the blobs, so it can be pushed anywhere."""
    head, tail = _header(state)
    lines = []
    for name in sorted(state.resources):
        record = state.resources[name]
        form = json.loads(_cached(record)[1])
        blob = _cached(record)[3]
        if blob is not None:
            del form[REF_FIELD]
            form.update(json.loads(blob.data))
        lines.append(
            b"    %s: %s,\n"
            % (msgspec.json.encode(name), msgspec.json.encode(form, order="sorted"))
        )
    if not lines:
        return head + b"{},\n" + tail
    lines[-1] = lines[-1][:-2] + b"\n"
    return b"".join([head, b"{\n", *lines, b"  },\n", tail])


@dataclass(frozen=True, slots=True)
class Changes:
    """What a write from one document to the next must store."""

    records: list[tuple[str, bytes]]
    """(name, stored JSON) of every record that is new or encodes differently."""
    gone: list[str]
    """The names of records that are gone."""
    blobs: list[Blob]
    """The details blobs the changed records refer to: stored before (or in the same
    transaction as) the records, so no stored record ever refers to a missing blob."""


def changed_records(old: State, new: State) -> Changes:
    """What a write from `old` to `new` must store. Unchanged records are the same objects
    (checked by identity first), so this costs the change plus one pass."""
    before = old.resources
    changed = []
    blobs: dict[str, Blob] = {}
    for name, record in new.resources.items():
        previous = before.get(name)
        if previous is record:
            continue
        line = stored_record(name, record)
        if previous is None or stored_record(name, previous) != line:
            changed.append((name, line))
            blob = record_blob(record)
            if blob is not None and (previous is None or record_blob(previous) != blob):
                blobs[blob.sha256] = blob
    gone = [name for name in before if name not in new.resources]
    return Changes(changed, gone, list(blobs.values()))


def _header(state: State) -> tuple[bytes, bytes]:
    """The document's bytes before and after its records (None project left out)."""
    fields: dict[str, Any] = {
        "format_version": state.format_version,
        "lineage": state.lineage,
        "serial": state.serial,
    }
    if state.project is not None:
        fields["project"] = state.project
    head: list[bytes] = [b"{\n"]
    tail: list[bytes] = []
    for key in sorted(fields):
        target = head if key < "resources" else tail
        target.append(b'  "%s": %s,\n' % (key.encode(), msgspec.json.encode(fields[key])))
    # Tombstones sort last; one per line too, so a forget adds one line.
    tombstones = [
        b"    %s: %d" % (msgspec.json.encode(name), highest)
        for name, highest in sorted(state.tombstones.items())
    ]
    body = b"{\n" + b",\n".join(tombstones) + b"\n  }" if tombstones else b"{}"
    tail.append(b'  "tombstones": ' + body + b"\n}\n")
    return b"".join(head) + b'  "resources": ', b"".join(tail)


def encode_header(state: State) -> bytes:
    """The document without its records (`resources` empty): what PostgreSQL keeps in the
    workspace's row, beside one row per record."""
    head, tail = _header(state)
    return head + b"{},\n" + tail


def encode_parts(state: State) -> list[bytes]:
    """`encode(state)` as a list of byte strings to write in order (no joined copy): most are
    cached record lines, so a write costs the records that changed, not all of them."""
    head, tail = _header(state)
    if not state.resources:
        return [head, b"{},\n", tail]
    records = state.resources
    # Nearly sorted already (records keep their place, new ones come last): timsort is linear.
    lines = [_line(name, records[name]) for name in sorted(records)]
    lines[-1] = lines[-1][:-2] + b"\n"  # no comma after the last record
    return [head, b"{\n", *lines, b"  },\n", tail]


def encode(state: State) -> bytes:
    """The canonical bytes of `state` (UTF-8 JSON, one record per line, trailing newline)."""
    return b"".join(encode_parts(state))


def decode(data: bytes | str, *, source: str, blobs: BlobSource = no_blobs) -> State:
    """Parse, migrate and validate a stored document.

    Args:
        data: the stored bytes (or text, as PostgreSQL returns it).
        source: where it came from, for messages.
        blobs: where the records' details blobs are read from (a self-contained document
            needs none).

    Raises:
        StateFormatError: not JSON (or beyond jsonsafe's limits), not an object, not a valid
            state document, one that fails `integrity.check_integrity`, or one whose details
            blob is missing.
        StateError: a newer format version than this reconciler supports.
    """
    return decode_raw(parse(data, source=source), source=source, blobs=blobs)


def parse(data: bytes | str, *, source: str) -> dict[str, Any]:
    """The JSON object in `data`, not yet migrated or validated.

    Raises:
        StateFormatError: not JSON (or beyond jsonsafe's limits), or not an object.
    """
    try:
        # Depth is bounded by the schema and checked per free-form field by check_integrity;
        # a whole-document walk would add a second pass over a large state on every read.
        raw: Any = loads_bounded(data, max_depth=None, unique_keys=True)
    except JsonDuplicateKeyError as exc:
        raise StateFormatError(
            f"{source} is corrupt: {exc} (a merge of two branches may have written a record "
            "twice); keep the one that names the job the service has, or run `reconciler "
            "state pull` from a backend that is right, and try again"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError, JsonLimitError) as exc:
        raise StateFormatError(f"{source} is corrupt: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise StateFormatError(f"{source} is corrupt: expected a JSON object at the top")
    return raw


def decode_raw(raw: dict[str, Any], *, source: str, blobs: BlobSource = no_blobs) -> State:
    """Migrate and validate a parsed document (see `decode`); `raw` may be modified."""
    migrated = migrate(raw, source=source)
    resources = migrated.get("resources")
    if isinstance(resources, dict):
        expand_records(resources, source=source, blobs=blobs)
    try:
        state = State.model_validate(migrated)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise StateFormatError(
            f"{source} is corrupt: `{where}`: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None
    check_integrity(state, source=source)
    return state
