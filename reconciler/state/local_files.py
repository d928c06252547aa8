"""The local backend's file-system primitives: content-addressed blob writes (one `syncfs` for
many) and reads, small reads in one system call, and telling another state file from any JSON
file.
Plain system calls throughout: a buffered file object per blob cost most of a 10,000-blob
write's CPU."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from reconciler.errors import StateError
from reconciler.state.backend import Blob

SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")
"""A blob's file name: its content's sha256."""

SYNCFS_FROM = 16
"""From this many new blobs in one call, one `syncfs` syncs them all (see `write_blobs`)."""


def _find_syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2) (every dirty page and rename of one file system, waited for), or None
    where the C library has none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_syncfs = _find_syncfs()


def write_blobs(blobs_dir: Path, blobs: Sequence[Blob]) -> None:
    """Write the `blobs` not yet stored under `blobs_dir/<kind>/<sha256>`, durable on return."""
    by_kind: dict[str, list[Blob]] = {}
    for blob in blobs:
        by_kind.setdefault(blob.kind, []).append(blob)
    opened: list[tuple[Path, int]] = []
    try:
        for kind, group in by_kind.items():
            directory = blobs_dir / kind
            directory.mkdir(parents=True, exist_ok=True)
            opened.append((directory, os.open(directory, _DIRECTORY_FLAGS)))
            # Content-addressed: an existing name holds the same bytes, never rewritten.
            new = [blob for blob in group if not _exists(blob.sha256, opened[-1][1])]
            by_kind[kind] = new
        count = sum(map(len, by_kind.values()))
        # A group commit of many new resources brings many blobs: one file system sync for
        # all of them instead of one per file (each a journal commit: 65 s for 10,000 on
        # this loaded machine). Few blobs are synced one by one, not flushing others' writes.
        syncfs = _syncfs if count >= SYNCFS_FROM else None
        for (_, dir_fd), group in zip(opened, by_kind.values(), strict=True):
            for blob in group:
                _write_blob(dir_fd, blob, sync=syncfs is None)
        if count and syncfs is not None:
            directory, dir_fd = opened[0]
            if syncfs(dir_fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed", str(directory))
            return  # the renames are synced with everything else
        # Each file was synced as it was written; the renames need one sync per directory.
        for (_, dir_fd), group in zip(opened, by_kind.values(), strict=True):
            if group:
                os.fsync(dir_fd)
    finally:
        for _, dir_fd in opened:
            os.close(dir_fd)


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def looks_like_state(path: Path) -> bool:
    """Whether `path` (or its backup) begins as a state document does: the lineage is among
    its first fields."""
    for candidate in (path, path.with_name(path.name + ".backup")):
        with contextlib.suppress(OSError), open(candidate, "rb") as f:
            head = f.read(512)
            if head.lstrip().startswith(b"{") and b'"lineage"' in head:
                return True
    return False


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _write_blob(dir_fd: int, blob: Blob, *, sync: bool) -> None:
    """Write `blob` under its address in the directory `dir_fd`: a temporary file of this
    process (a collection under the lock removes those of a killed one), then a rename, so
    the address never names a partial blob. Plain system calls: a buffered file object per
    blob cost most of a 10,000-blob write's CPU."""
    temporary = f".{blob.sha256}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(blob.data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise
    os.close(fd)
    os.rename(temporary, blob.sha256, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def read_blobs(directory: Path, addresses: Collection[str]) -> dict[str, bytes]:
    """The blobs of `addresses` that exist in `directory` (one kind's).

    A read of the state reads one per record: relative to one directory descriptor, with
    plain system calls (pathlib's per-call overhead was most of the cost at 10,000)."""
    found: dict[str, bytes] = {}
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return found  # decoding names the missing blobs and how to restore them
    except OSError as exc:
        raise StateError(f"cannot read blob directory {directory}: {exc.strerror}") from None
    try:
        for address in addresses:
            if not SHA256_NAME.fullmatch(address):
                continue  # not a blob address: decoding names it as missing
            try:
                fd = os.open(address, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StateError(
                    f"cannot read blob {directory / address}: {exc.strerror}"
                ) from None
            try:
                found[address] = read_fd(fd)
            finally:
                os.close(fd)
    finally:
        os.close(dir_fd)
    return found


def read_fd(fd: int) -> bytes:
    first = os.pread(fd, 65536, 0)
    if len(first) < 65536:
        return first  # a regular file reads short only at its end: one call per small blob
    chunks = [first]
    offset = len(first)
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
