"""Durable local files: write to a temp file and rename into place, read JSONL in blocks.

A file is written to a temporary name beside its final place and renamed over it only once
complete and fsynced (the directory too), so a crash never leaves a half-written file that looks
whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_BLOCK = 1 << 20


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable (the new entry, not only the file's bytes)."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[IO[bytes]]:
    """A temp file beside `final`, fsynced and renamed over it only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_directory(final.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def iter_jsonl_lines(path: Path) -> Iterator[bytes]:
    """Every non-blank line of a JSONL file, read in large blocks (bounded memory)."""
    with path.open("rb") as handle:
        pending = b""
        while block := handle.read(_BLOCK):
            pending += block
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line
        if pending.strip():
            yield pending


def temp_beside(final: Path) -> Path:
    """A new empty temp file beside `final`, for a download that becomes `final` in place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    return Path(name)
