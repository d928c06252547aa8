"""The local backend's journal: a locked command's writes appended as lines, not whole files.

Rewriting the whole document costs its size (some 15 MB at 10,000 resources: 25 ms of writing
and syncing per apply step). While a command holds the state lock, `LocalBackend` appends each
write's change to `<state>.journal` instead, one line per write, synced before the write
returns:

    <sha256 of the JSON, hex> {"format_version":6,"lineage":"…","serial":8,"project":…,
    "tombstones":{…},"set":{"<name>":<record as codec stores it>,…},"unset":["<name>",…]}

(the details blobs its records refer to are stored, synced, before the line is appended)

and every reader replays the lines over the document. When the command releases the lock (or
the journal outgrows the document) the document is rewritten with every change and the journal
removed, so outside a running command the file alone is the whole state (what git commits).

The last line, when its checksum does not match or it has no newline, is the torn end of a write
that never returned: it is ignored, and the next append cuts it off. A damaged line anywhere
else cannot be a torn write (nothing is appended after one without cutting it off first), so the
journal is refused as corrupt rather than dropping the acknowledged entries after it; so is a
line whose checksum matches a body that is not an entry. Lines at or below the document's serial
were already folded into it by a rewrite that was killed before it removed the journal; they are
skipped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec

from reconciler.errors import StateError
from reconciler.jsonsafe import JsonLimitError, loads_bounded
from reconciler.state import codec
from reconciler.state.document import FORMAT_VERSION, State
from reconciler.state.migrations import StateFormatError
from reconciler.state.stored_form import Blob

SUFFIX = ".journal"

_RESTORE_HINT = (
    f"restore the state from its backup, or delete the `{SUFFIX}` file to drop the changes it holds"
)


def encode_entry(old: State, new: State) -> tuple[bytes, list[Blob]]:
    """The journal line that takes `old` to `new` (whose serial is the next one), and the
    details blobs its records refer to (stored before the line is appended)."""
    changes = codec.changed_records(old, new)
    changed, gone = changes.records, changes.gone
    head: dict[str, Any] = {
        "format_version": new.format_version,
        "lineage": new.lineage,
        "serial": new.serial,
        "project": new.project,
        "tombstones": dict(sorted(new.tombstones.items())),
        "unset": gone,
    }
    records = b",".join(msgspec.json.encode(name) + b":" + line for name, line in changed)
    body = msgspec.json.encode(head)[:-1] + b',"set":{' + records + b"}}"
    return hashlib.sha256(body).hexdigest().encode() + b" " + body + b"\n", changes.blobs


def replay(raw: dict[str, Any], journal: bytes, *, source: str) -> int:
    """Apply the journal's entries to the parsed document `raw` (in place); returns the length of
    the journal's valid part (where the next entry goes).

    Raises:
        StateFormatError: an intact entry does not follow the document (another lineage, a gap
            in the serials, or not a mapping of records).
        StateError: an entry of a newer format version than this reconciler writes.
    """
    valid = 0
    number = 1
    while True:
        end = journal.find(b"\n", valid)
        if end < 0:
            return valid  # nothing, or a torn tail without its newline
        entry = _entry(journal[valid:end], source=source, number=number)
        if entry is None:
            if end + 1 < len(journal):
                raise StateFormatError(
                    f"{source} is corrupt: line {number} of its journal (`{SUFFIX}`) is damaged "
                    "(its checksum does not match) and acknowledged entries follow it",
                    hint=_RESTORE_HINT,
                )
            return valid  # a torn last line: that write never returned
        _apply(raw, entry, source=source)
        valid = end + 1
        number += 1


def _entry(line: bytes, *, source: str, number: int) -> dict[str, Any] | None:
    """The entry on one line; None when its checksum does not match (a torn or damaged line).

    Raises:
        StateFormatError: the checksum matches but the body is not an entry (written by hand).
    """
    digest, _, body = line.partition(b" ")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    try:
        entry = loads_bounded(body, max_depth=None)
    except (UnicodeDecodeError, json.JSONDecodeError, JsonLimitError) as exc:
        raise StateFormatError(
            f"{source} is corrupt: line {number} of its journal (`{SUFFIX}`) is not JSON: {exc}",
            hint=_RESTORE_HINT,
        ) from None
    if not isinstance(entry, dict):
        raise StateFormatError(
            f"{source} is corrupt: line {number} of its journal (`{SUFFIX}`) is not an entry",
            hint=_RESTORE_HINT,
        )
    return entry


def _apply(raw: dict[str, Any], entry: dict[str, Any], *, source: str) -> None:
    where = f"{source} is corrupt: its journal (`{SUFFIX}`)"
    version = entry.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise StateError(
            f"{source} has a journal of state format version {version}, newer than this "
            f"reconciler supports ({FORMAT_VERSION})",
            hint="upgrade reconciler; an older one must not rewrite a newer state",
        )
    serial, current = entry.get("serial"), raw.get("serial")
    if not isinstance(serial, int) or not isinstance(current, int):
        raise StateFormatError(f"{where} or the document records no integer serial")
    if serial <= current:
        return  # folded into the document already
    if serial != current + 1 or entry.get("lineage") != raw.get("lineage"):
        raise StateFormatError(
            f"{where} does not follow the document (entry serial {serial} of lineage "
            f"{entry.get('lineage')!r} over serial {current})",
            hint=_RESTORE_HINT,
        )
    resources, records, unset = raw.get("resources"), entry.get("set"), entry.get("unset")
    if not (isinstance(resources, dict) and isinstance(records, dict) and isinstance(unset, list)):
        raise StateFormatError(f"{where} holds an entry without its records")
    for name in unset:
        resources.pop(name, None)
    resources.update(records)
    raw["serial"] = serial
    raw["tombstones"] = entry.get("tombstones", {})
    raw["project"] = entry.get("project")
