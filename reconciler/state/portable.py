"""The state as `state pull` prints it and `state push` reads it: a document that carries its
blobs, so it can be pushed into any backend.

A stored document refers to blobs beside it (request_keys.py): each record's details, a
resource's key digest index, the request keys each shard or partial run sent. `codec.self_contained`
spells the details out; the other two are carried here, under `carried_blobs`, as their exact
text (their address is the sha256 of those bytes, so the text is not re-encoded). Without them a
state moved to another backend (local to PostgreSQL, or into a fresh clone) would lose them
silently: the next plan would treat every request as changed and re-run, and a collect could
not tell which result lines a shard answered.

A pushed document whose references are neither carried nor already in the backend is refused,
naming what is missing: an older state file pushed after garbage collection removed the blobs
only it referred to, or a document written by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from reconciler.errors import StateError
from reconciler.state import codec
from reconciler.state.backend import Blob, BlobStore, check_blob
from reconciler.state.document import State
from reconciler.state.references import KEY_DIGESTS_BLOB, REQUEST_KEYS_BLOB
from reconciler.state.request_keys import details_source

CARRIED_FIELD = "carried_blobs"
"""The top-level field of a pulled document that holds its blobs, `{"<kind>/<sha256>": text}`."""
CARRIED_KINDS = (KEY_DIGESTS_BLOB, REQUEST_KEYS_BLOB)
"""The blob kinds carried (details are spelled out into the records instead)."""
_NAMED_AT_MOST = 3
"""Missing blobs named in one message; the rest are counted."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One blob a state refers to, and what refers to it (for messages)."""

    kind: str
    sha256: str
    needed_by: str


@dataclass(frozen=True, slots=True)
class Pulled:
    """What `state pull` prints, and the blobs it could not carry (missing from the store)."""

    document: bytes
    missing: list[Reference]


@dataclass(frozen=True, slots=True)
class Pushed:
    """A document read for `state push`: the state, and the carried blobs it refers to (to
    store before the state that refers to them)."""

    state: State
    blobs: list[Blob]


def references(state: State) -> list[Reference]:
    """Every carried-kind blob `state` refers to, once each, in a stable order."""
    found: dict[tuple[str, str], Reference] = {}
    for name in sorted(state.resources):
        record = state.resources[name]
        if record.key_digests_ref:
            key = (KEY_DIGESTS_BLOB, record.key_digests_ref)
            found.setdefault(key, Reference(*key, f"{name}'s key digests"))
        for attempt in record.attempts:
            if attempt.request_keys_file:
                key = (REQUEST_KEYS_BLOB, attempt.request_keys_file)
                where = f"attempt {attempt.number}" + (
                    f" shard {attempt.shard}" if attempt.shard is not None else ""
                )
                found.setdefault(key, Reference(*key, f"{name}'s request keys of {where}"))
    return list(found.values())


def pull(state: State, blobs: BlobStore) -> Pulled:
    """The self-contained document with the blobs it refers to carried in it."""
    carried: list[bytes] = []
    missing: list[Reference] = []
    for ref in references(state):
        data = blobs.get_blob(ref.kind, ref.sha256)
        if data is None:
            missing.append(ref)
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            missing.append(ref)  # not one this version wrote (both kinds are JSON text)
            continue
        address = msgspec.json.encode(f"{ref.kind}/{ref.sha256}")
        carried.append(b"    %s: %s" % (address, msgspec.json.encode(text)))
    document = codec.self_contained(state)
    if carried:
        field = b'  "%s": {\n%s\n  },\n' % (CARRIED_FIELD.encode(), b",\n".join(carried))
        document = document[:2] + field + document[2:]  # after the opening "{\n"
    return Pulled(document, missing)


def read_pushed(data: bytes, *, source: str, blobs: BlobStore) -> Pushed:
    """The state in `data` and the carried blobs it refers to.

    Raises:
        StateFormatError: not a state document (see `codec.decode`).
        StateError: a carried blob is malformed or does not match its address, or the state
            refers to a blob that is neither carried nor in `blobs`.
    """
    raw = codec.parse(data, source=source)
    carried = _carried(raw.pop(CARRIED_FIELD, None), source)
    state = codec.decode_raw(raw, source=source, blobs=details_source(blobs))
    needed: list[Blob] = []
    missing: list[Reference] = []
    for ref in references(state):
        blob = carried.get((ref.kind, ref.sha256))
        if blob is not None:
            needed.append(blob)
        elif blobs.get_blob(ref.kind, ref.sha256) is None:
            missing.append(ref)
    if missing:
        raise StateError(
            f"{source} refers to {len(missing)} blob(s) that it does not carry and this "
            f"backend does not hold: {describe(missing)}",
            hint="push the output of `reconciler state pull` from the backend the state came "
            "from (it carries them); a state file older than a garbage collection no longer "
            "has them",
        )
    return Pushed(state, needed)


def describe(missing: list[Reference]) -> str:
    """The first few missing blobs, named by what needs them."""
    named = "; ".join(
        f"{ref.needed_by} ({ref.kind}/{ref.sha256[:12]})" for ref in missing[:_NAMED_AT_MOST]
    )
    more = len(missing) - _NAMED_AT_MOST
    return named + (f"; and {more} more" if more > 0 else "")


def _carried(value: Any, source: str) -> Mapping[tuple[str, str], Blob]:
    """The blobs of a `carried_blobs` field, each checked against its address."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StateError(f"{source}: `{CARRIED_FIELD}` must be an object of blob texts")
    found: dict[tuple[str, str], Blob] = {}
    for address, text in value.items():
        kind, _, sha256 = address.partition("/")
        if kind not in CARRIED_KINDS or not isinstance(text, str):
            raise StateError(
                f"{source}: `{CARRIED_FIELD}.{json.dumps(address)[:80]}` is not a carried blob: "
                f"expected `<kind>/<sha256>` with kind one of {', '.join(CARRIED_KINDS)}, "
                "and its text as a string"
            )
        try:
            data = text.encode()
        except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: no blob's text
            raise StateError(f"{source}: the carried blob {address} is not text") from None
        check_blob(kind, sha256, data)  # a forged or edited blob is refused here
        found[(kind, sha256)] = Blob(kind, sha256, data)
    return found
