"""Which blobs a state refers to: what garbage collection of the blob store must keep.

Three kinds of content-addressed blobs live beside the state: a record's details (`applied`,
`state.stored_form`), a resource's key digest index (`key-digests`, `key_digests_ref` in its
details) and the request keys a partial or sharded job sent (`request-keys`, an attempt's
`request_keys_file`). A blob none of them names is garbage; the backends delete it only while
holding the state lock (every writer holds it, and stores a blob just before the write that
refers to it), and each deletion is of garbage alone, so a kill at any point leaves a state
that reads. The backends scan the stored text (the document, each record's line, the local
backup and journal, whatever their form) for every sha256-shaped token and keep what they name,
plus the key digest indexes the records' details blobs name: a token that is no blob's address
keeps nothing, and decoding every record again only to list its details address cost more
than the whole collection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.state.document import State
from reconciler.state.stored_form import DETAILS_BLOB

REQUEST_KEYS_BLOB = "request-keys"
KEY_DIGESTS_BLOB = "key-digests"
BLOB_KINDS = (DETAILS_BLOB, KEY_DIGESTS_BLOB, REQUEST_KEYS_BLOB)
"""The kinds a collection looks at; blobs of any other kind (a newer version's) are left alone."""

_TOKEN = re.compile(rb"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Collected:
    """What one garbage collection of the blob store did."""

    removed: int = 0
    """Blobs deleted: no record of the state (nor, locally, of its backup) refers to them."""
    removed_bytes: int = 0
    kept: int = 0
    """Blobs left because something refers to them."""
    skipped: str | None = None
    """Why nothing was collected (None: it ran), in a sentence for the user."""


def detail_references(state: State) -> set[str]:
    """The blob addresses `state` keeps in its records' details blobs (the key digest
    indexes), which its stored text does not show, and its attempts' request keys."""
    found: set[str] = set()
    for record in state.resources.values():
        if record.key_digests_ref:
            found.add(record.key_digests_ref)
        found.update(a.request_keys_file for a in record.attempts if a.request_keys_file)
    return found


def tokens(data: bytes) -> set[str]:
    """Every sha256-shaped token in `data`: what a document of any form may refer to."""
    return {match.decode() for match in _TOKEN.findall(data)}


def garbage(stored: Iterable[str], keep: set[str]) -> list[str]:
    """The addresses of `stored` that `keep` does not name, in order."""
    return sorted(address for address in stored if address not in keep)
