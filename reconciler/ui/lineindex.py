"""Line-offset and key indexes of JSONL files, kept under `.reconciler/index/`, so a page of a
1 GiB results file is two seeks and a few reads, never a load of the file.

An index is named by the sha256 of the file's resolved path, size and modification time: a
file rewritten in place (apply renames a new results copy over the old) gets a new index, and
an index is never trusted for a file that changed. Indexes are written to a temporary name and
renamed, so two requests building the same one at once cannot leave half an index behind.

The line index is a flat file of little-endian uint64 line starts (8 bytes a line: 8 MiB for a
million results). The key index (request key -> line number) is a small SQLite table, built
only when a page needs a key's line (prompts by key, a request in another attempt's results).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

INDEX_DIR = ".reconciler/index"
_FORMAT = b"rc-lines-1\n"
_READ_BLOCK = 8 << 20
_FLUSH_ENTRIES = 1 << 16
SCAN_BUDGET_BYTES = 256 << 20
"""A search or filter reads at most this much per request and offers to go on from where it
stopped, so one request never reads a whole 1 GiB file before answering."""


class _Keyed(msgspec.Struct, gc=False):
    """The only field a key index reads; msgspec skips the rest of the line unbuilt."""

    key: Any = None


_keyed = msgspec.json.Decoder(_Keyed)


def _index_name(path: Path) -> str:
    stat = path.stat()
    identity = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _line_starts(path: Path, size: int) -> Iterator[array[int]]:
    """Every line's start offset, in arrays of at most `_FLUSH_ENTRIES` (flat memory)."""
    starts: array[int] = array("Q", [0] if size else [])
    base = 0
    with path.open("rb") as handle:
        while base < size and (block := handle.read(min(_READ_BLOCK, size - base))):
            at = block.find(b"\n")
            while at != -1:
                start = base + at + 1
                if start < size:
                    starts.append(start)
                at = block.find(b"\n", at + 1)
            base += len(block)
            if len(starts) >= _FLUSH_ENTRIES:
                yield starts
                starts = array("Q")
    yield starts


@dataclass(frozen=True, slots=True)
class LineIndex:
    """Where each line of one JSONL file starts; read a range of lines by seeking."""

    data: Path
    index: Path
    size: int
    count: int

    @classmethod
    def open(cls, data: Path, root: Path) -> LineIndex:
        """The index of `data`, built under `root/.reconciler/index/` on first use.

        Raises:
            OSError: `data` cannot be read or the index cannot be written.
        """
        size = data.stat().st_size
        index = root / INDEX_DIR / f"{_index_name(data)}.lines"
        if not index.exists():
            with _atomic(index) as temporary, temporary.open("wb") as out:
                out.write(_FORMAT)
                for starts in _line_starts(data, size):
                    if sys.byteorder != "little":
                        starts.byteswap()
                    out.write(starts.tobytes())
        count = (index.stat().st_size - len(_FORMAT)) // 8
        return cls(data=data, index=index, size=size, count=count)

    def _starts(self, first: int, n: int) -> list[int]:
        """Line starts of lines first..first+n-1, then the end of the last one."""
        with self.index.open("rb") as handle:
            handle.seek(len(_FORMAT) + 8 * first)
            starts: array[int] = array("Q")
            starts.frombytes(handle.read(8 * n))
        if sys.byteorder != "little":
            starts.byteswap()
        values = list(starts)
        if first + n < self.count:
            with self.index.open("rb") as handle:
                handle.seek(len(_FORMAT) + 8 * (first + n))
                values.append(int.from_bytes(handle.read(8), "little"))
        else:
            values.append(self.size)
        return values

    def lines(self, first: int, n: int) -> list[tuple[int, bytes]]:
        """(line number, raw line without its newline) for up to `n` lines from `first`."""
        first = max(0, first)
        n = max(0, min(n, self.count - first))
        if n == 0:
            return []
        starts = self._starts(first, n)
        with self.data.open("rb") as handle:
            handle.seek(starts[0])
            blob = handle.read(starts[-1] - starts[0])
        base = starts[0]
        return [
            (first + i, blob[starts[i] - base : starts[i + 1] - base].rstrip(b"\r\n"))
            for i in range(n)
        ]

    def line(self, number: int) -> bytes | None:
        found = self.lines(number, 1)
        return found[0][1] if found else None

    def scan(
        self,
        first: int,
        matches: Callable[[bytes], bool],
        limit: int,
        budget: int = SCAN_BUDGET_BYTES,
    ) -> tuple[list[tuple[int, bytes]], int | None]:
        """Lines from `first` on for which `matches` is true, at most `limit` of them.

        Returns the lines and the line to go on from (None: the end of the file was reached).
        Reads at most `budget` bytes, so a rare match in a huge file is found over several
        requests, each answering promptly.
        """
        if first >= self.count:
            return [], None
        start = self._starts(first, 1)[0]
        found: list[tuple[int, bytes]] = []
        number, read = first, 0
        with self.data.open("rb") as handle:
            handle.seek(start)
            for raw in handle:
                read += len(raw)
                line = raw.rstrip(b"\r\n")
                if line and matches(line):
                    found.append((number, line))
                number += 1
                if len(found) >= limit or read >= budget:
                    return found, (number if number < self.count else None)
        return found, None


class KeyIndex:
    """Request key -> line number of one JSONL file, in SQLite beside the line index."""

    def __init__(self, lines: LineIndex) -> None:
        self._lines = lines
        self._path = lines.index.with_suffix(".keys.sqlite")

    def _build(self) -> None:
        with _atomic(self._path) as temporary:
            db = sqlite3.connect(temporary)
            try:
                db.execute("CREATE TABLE keys (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
                db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)", self._pairs())
                db.commit()
            finally:
                db.close()

    def _pairs(self) -> Iterator[tuple[str, int]]:
        with self._lines.data.open("rb") as handle:
            for number, raw in enumerate(handle):
                try:
                    key = _keyed.decode(raw).key
                except msgspec.DecodeError:
                    continue
                if isinstance(key, str):
                    yield key, number

    def line_of(self, key: str) -> int | None:
        """The line of the first request with `key`, or None."""
        if not self._path.exists():
            self._build()
        db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT line FROM keys WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
        return int(row[0]) if row else None


def key_of(raw: bytes) -> str | None:
    """The `key` of one JSONL line, or None when it has none (or is not JSON)."""
    try:
        key = _keyed.decode(raw).key
    except msgspec.DecodeError:
        return None
    return key if isinstance(key, str) else None
