"""Typed storage of request keys and key digests in the state backend's blob side-store, and
reading records' details blobs through the blob protocol.

Two kinds of content-addressed blobs live beside the state: the request keys one job (a shard or
a partial run) sent, in the order it sent them, and a resource's per-key digest index of the
source it last applied (what an incremental re-run compares against). The encodings here are
part of the state: a blob's address is the sha256 of these exact bytes, so they must not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence

from reconciler.state.backend import Blob, BlobStore
from reconciler.state.document import State

# The kinds are named beside what garbage collection keeps; re-exported for the callers here.
from reconciler.state.references import KEY_DIGESTS_BLOB as KEY_DIGESTS_BLOB
from reconciler.state.references import REQUEST_KEYS_BLOB as REQUEST_KEYS_BLOB
from reconciler.state.stored_form import DETAILS_BLOB, BlobSource


def request_keys_blob(keys: Sequence[str]) -> Blob:
    """The keys one job sends, in order, as a blob; its sha256 is the attempt's address."""
    data = json.dumps(list(keys)).encode()
    return Blob(REQUEST_KEYS_BLOB, hashlib.sha256(data).hexdigest(), data)


def store_request_keys(blobs: BlobStore, keys: Sequence[str]) -> str:
    """Store the keys one job sends, in order; returns the address to record on its attempt."""
    blob = request_keys_blob(keys)
    blobs.put_blobs((blob,))
    return blob.sha256


def load_request_keys(blobs: BlobStore, address: str) -> list[str] | None:
    """The keys stored at `address`, in the order the job sent them; None if never stored."""
    blob = blobs.get_blob(REQUEST_KEYS_BLOB, address)
    if blob is None:
        return None
    return [str(key) for key in json.loads(blob)]


def key_digests_blob(digests: Mapping[str, str]) -> Blob:
    """A source's key -> request digest index as a blob; its sha256 is the record's address.

    Apply hands it to the state write that records the address (`StateStore.update`), so the
    two are stored in one group commit."""
    data = json.dumps(dict(sorted(digests.items())), separators=(",", ":")).encode()
    return Blob(KEY_DIGESTS_BLOB, hashlib.sha256(data).hexdigest(), data)


def store_key_digests(blobs: BlobStore, digests: Mapping[str, str]) -> str:
    """Store a source's key -> request digest index; returns the address for the record."""
    blob = key_digests_blob(digests)
    blobs.put_blobs((blob,))
    return blob.sha256


def load_key_digests(
    blobs: BlobStore, state: State, names: Collection[str] | None = None
) -> dict[str, dict[str, str]]:
    """Per resource of `names` (None: every one), the key digest index recorded for its applied
    source (for the planner, which names those it reads: `plan.planner.key_digests_wanted`).

    A resource without an index, or whose blob is missing or empty, is left out: the planner
    then treats every request as changed.
    """
    result: dict[str, dict[str, str]] = {}
    for name in state.resources if names is None else names:
        record = state.resources.get(name)
        if record is not None and record.key_digests_ref:
            blob = blobs.get_blob(KEY_DIGESTS_BLOB, record.key_digests_ref)
            if blob:
                result[name] = {str(k): str(v) for k, v in json.loads(blob).items()}
    return result


def details_source(blobs: BlobStore) -> BlobSource:
    """Records' details blobs read through the blob protocol, for decoding a document the
    backend did not read itself (`state push` of a committed state file)."""

    def found(addresses: Collection[str]) -> dict[str, bytes]:
        loaded = {address: blobs.get_blob(DETAILS_BLOB, address) for address in addresses}
        return {address: data for address, data in loaded.items() if data is not None}

    return found
