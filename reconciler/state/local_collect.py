"""Garbage collection of the local backend's `blobs/`: delete the blobs neither the state (its
journal replayed) nor its backup refers to, and never beside another state's files.

The backup and the journal are scanned for every sha256-shaped token (whatever their form), and
so are the details blobs the backup names that the state does not: restoring the backup must
find its blobs. The caller holds the state's directory lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from reconciler.state import journal
from reconciler.state.document import State
from reconciler.state.local_files import SHA256_NAME, looks_like_state
from reconciler.state.references import (
    BLOB_KINDS,
    Collected,
    detail_references,
    garbage,
    tokens,
)
from reconciler.state.stored_form import DETAILS_BLOB

BlobReader = Callable[[Collection[str]], dict[str, bytes]]
"""The details blobs of some addresses that exist (the backend's reader)."""


def other_states(path: Path, ours: Collection[str]) -> list[str]:
    """Other state files sharing `path`'s directory (and so `blobs/`): documents that read like
    a state, and those known by their lock, journal or backup files (a project's `Pipfile.lock`
    or `uv.lock` is no state's). The document alone counts: a clone of a repository has the
    state files and `blobs/` but not the files `.gitignore` leaves out. `ours`: the names of
    `path`'s own files, the document's included."""
    found = set()
    for entry in os.scandir(path.parent):
        name = entry.name
        if name in ours or name.startswith(".") or not entry.is_file():
            continue
        suffix = next((s for s in (".lock", journal.SUFFIX, ".backup") if name.endswith(s)), "")
        other = path.parent / name.removesuffix(suffix)
        if other != path and looks_like_state(other):
            found.add(str(other))
    return sorted(found)


def collect(
    blobs_dir: Path,
    stored: State,
    versions: Sequence[Path],
    *,
    details: BlobReader,
    on_deleted: Callable[[], None],
) -> Collected:
    """Delete the blobs under `blobs_dir` that `stored` and the files of `versions` (the
    document first, then its journal and backup) do not refer to, and the temporary files of
    killed blob writes. `on_deleted` is called after each blob deleted."""
    listed: dict[str, dict[str, os.DirEntry[str]]] = {}
    for kind in BLOB_KINDS:
        with contextlib.suppress(FileNotFoundError):
            listed[kind] = {e.name: e for e in os.scandir(blobs_dir / kind)}
    keep = detail_references(stored) | _older_references(
        versions, set(listed.get(DETAILS_BLOB, ())), detail_references(stored), details
    )
    removed = kept = removed_bytes = 0
    for kind, entries in listed.items():
        directory = blobs_dir / kind
        names = [n for n in entries if SHA256_NAME.fullmatch(n)]
        doomed = garbage(names, keep)
        kept += len(names) - len(doomed)
        for name in doomed:
            size = entries[name].stat().st_size
            os.unlink(directory / name)
            removed, removed_bytes = removed + 1, removed_bytes + size
            on_deleted()
        # Temporary files of a blob write that was killed: nothing refers to them, and
        # under the lock no write of this state is running.
        for name in entries:
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(directory / name)
    return Collected(removed=removed, removed_bytes=removed_bytes, kept=kept)


def _older_references(
    versions: Sequence[Path], details: set[str], known: set[str], read: BlobReader
) -> set[str]:
    """What the document, its journal and its backup may refer to (every sha256-shaped
    token in them), and what the details blobs only the backup or journal name refer to,
    given the stored details blobs' addresses and what the state's records refer to."""
    found: set[str] = set()
    for index, path in enumerate(versions):
        try:
            text = tokens(path.read_bytes())
        except FileNotFoundError:
            continue
        if index == 0:  # the document
            known = known | text
        found |= text
    # A details blob only an older version names refers to key digests of its own.
    for data in read((found & details) - known).values():
        found |= tokens(data)
    return found
