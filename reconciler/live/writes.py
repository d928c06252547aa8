"""The disk side of transfers: a file read in pieces, and downloaded chunks written, hashed and
written back while they arrive. No SDK, no HTTP: byte iterators in, files out."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Final

from typing_extensions import Buffer

TRANSFER_PIECE: Final = 1 << 20
"""Bytes per read, hash and write in uploads and downloads."""
_WRITEBACK_EVERY: Final = 64 << 20
"""A download starts writing back to disk after every this many bytes (see `receive`)."""
_MAX_PIECES: Final = 256
"""Chunks per `writev`, well under IOV_MAX (1024) however small the network's chunks are."""


class HashingWriter(io.RawIOBase):
    """The download destination the SDK's public `files.download` streams into: hashes and
    counts while writing.

    Writes are synchronous: the SDK hands over 1 MiB chunks, which land in the page cache in
    well under a millisecond, cheaper than a thread hop per chunk.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk: Buffer) -> int:
        data = bytes(chunk)
        self.sha256.update(data)
        self.size += len(data)
        return self._handle.write(data)


async def file_pieces(path: Path, start: int, size: int) -> AsyncIterator[bytes]:
    """Bytes `start` to `size` of `path` in `TRANSFER_PIECE` pieces (memory: one piece).

    Raises:
        OSError: the file is shorter than `size` (it changed while being sent).
    """
    handle = await asyncio.to_thread(path.open, "rb", buffering=0)
    try:
        handle.seek(start)
        left = size - start
        while left > 0:
            piece = handle.read(min(TRANSFER_PIECE, left))
            if not piece:
                raise OSError(f"{path} shrank while it was being uploaded")
            left -= len(piece)
            yield piece
    finally:
        handle.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_pieces(fd: int, pieces: list[bytes]) -> None:
    """Write `pieces` in order with one `writev` (no joined copy); a short write finishes
    piece by piece."""
    if not pieces:
        return
    written = os.writev(fd, pieces)
    for piece in pieces:
        if written >= len(piece):
            written -= len(piece)
            continue
        _write_all(fd, piece[written:])
        written = 0


async def receive(
    chunks: AsyncIterator[bytes], dest: Path, *, hashing: bool = True
) -> tuple[str, int]:
    """Write `chunks` to `dest` (created or truncated), hashing them; return (sha256 hex, bytes).
    Without `hashing` (a follower hashes the file) the digest returned is "".

    Chunks are gathered up to `TRANSFER_PIECE` and written with one `writev` (no joined copy):
    per-chunk write calls cost more than the bytes they move. Every `_WRITEBACK_EVERY` bytes
    a worker thread starts `fdatasync` on what has been written so far, so the disk writes back
    while the network delivers, and the caller's final fsync (durability, DESIGN §7) finds
    little left to write.
    """
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    size = unsynced = 0
    pending: list[bytes] = []
    pending_size = 0
    syncing: asyncio.Future[None] | None = None
    # An open is microseconds: on the loop, not a thread hop (transfer.SMALL_FILE_IO).
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        async for chunk in chunks:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size < TRANSFER_PIECE and len(pending) < _MAX_PIECES:
                continue
            if hashing:
                for part in pending:
                    digest.update(part)
            write_pieces(fd, pending)
            size += pending_size
            unsynced += pending_size
            pending.clear()
            pending_size = 0
            if unsynced >= _WRITEBACK_EVERY and (syncing is None or syncing.done()):
                if syncing is not None:
                    syncing.result()  # a failed writeback is a failed download
                syncing = loop.run_in_executor(None, os.fdatasync, fd)
                unsynced = 0
        if hashing:
            for part in pending:
                digest.update(part)
        write_pieces(fd, pending)
        size += pending_size
    finally:
        # The fd must outlive the worker's fdatasync, whatever happened here.
        if syncing is not None:
            await asyncio.wait({syncing})
        os.close(fd)
    if syncing is not None:
        syncing.result()
    return (digest.hexdigest() if hashing else ""), size
