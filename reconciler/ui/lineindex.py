"""Line-offset and key indexes of JSONL files, kept under `.reconciler/index/`, so a page of a
1 GiB results file is two seeks and a few reads, never a load of the file.

An index is named by the sha256 of the file's resolved path, size and modification time: a
file rewritten in place (apply renames a new results copy over the old) gets a new index, and
an index is never trusted for a file that changed. Indexes are written to a temporary name and
renamed, so two requests building the same one at once cannot leave half an index behind.

The line index is a flat file of little-endian uint64 line starts (8 bytes a line: 8 MiB for a
million results), grown on demand: page 1,000 needs only the file's first 50,000 lines read. The key index (request key -> line number) is a small SQLite table, built
only when a page needs a key's line (prompts by key, a request in another attempt's results).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

INDEX_DIR = ".reconciler/index"
_FORMAT = b"rc-lines-1\n"
_READ_BLOCK = 8 << 20
_EXTEND_LINES = 1 << 14
"""A prefix index grows by at least this many lines past the one asked for, so paging on
does not read the file a page at a time."""
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


_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _read_starts(path: Path, first: int = 0, n: int | None = None) -> array[int]:
    starts: array[int] = array("Q")
    try:
        with path.open("rb") as handle:
            handle.seek(len(_FORMAT) + 8 * first)
            raw = handle.read() if n is None else handle.read(8 * n)
    except FileNotFoundError:
        return starts
    starts.frombytes(raw[: len(raw) // 8 * 8])
    if sys.byteorder != "little":
        starts.byteswap()
    return starts


def _write_starts(target: Path, starts: array[int]) -> None:
    data = array("Q", starts)
    if sys.byteorder != "little":
        data.byteswap()
    with _atomic(target) as temporary:
        temporary.write_bytes(_FORMAT + data.tobytes())


SOURCE_SUFFIX = ".source"
"""Beside each file's indexes: the path of the file they index (which the name, a hash, does
not tell), written before any index, and touched whenever the indexes are opened: pruning
reads whether that file still exists unchanged, and when it was last used."""

INDEX_MAX_BYTES = 512 << 20
"""The indexes kept under `INDEX_DIR` at most (a million-line results file's is 8 MiB): past
it, the least recently used go first."""

_STALE_TEMPORARY_SECONDS = 3600.0
"""A temporary index file this old belongs to no build under way (a crashed one's leftover)."""


def _record_source(path: Path, data: Path) -> None:
    try:
        if path.read_text("utf-8", "surrogateescape") == str(data.resolve()):
            os.utime(path)
            return
    except FileNotFoundError:
        pass
    with _atomic(path) as temporary:
        temporary.write_text(str(data.resolve()), "utf-8", "surrogateescape")


def _current(source: Path, name: str) -> bool:
    """Whether the indexes named `name` still describe the file `source` records."""
    try:
        data = Path(source.read_text("utf-8", "surrogateescape"))
        return _index_name(data) == name
    except OSError:
        return False


def prune_indexes(root: Path, max_bytes: int = INDEX_MAX_BYTES) -> list[Path]:
    """Delete the indexes under `root/INDEX_DIR` whose file is gone or has changed since (a
    results copy apply replaced, another attempt's output pruned), those that do not say
    which file they index (an older version's), temporary files left by a crash, and then
    the least recently used beyond `max_bytes`; the paths deleted.

    Safe while pages are served: a build under way has written its source record first
    (`LineIndex.__init__`) and its temporary file is recent, so neither is taken for stale.
    """
    folder = root / INDEX_DIR
    try:
        entries = [entry for entry in folder.iterdir() if entry.is_file()]
    except FileNotFoundError:
        return []
    now = time.time()
    removed: list[Path] = []
    groups: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.name.startswith(".tmp-"):
            if now - entry.stat().st_mtime > _STALE_TEMPORARY_SECONDS:
                removed.append(entry)
            continue
        groups.setdefault(entry.name.split(".", 1)[0], []).append(entry)
    kept: list[tuple[float, int, list[Path]]] = []
    for name, files in groups.items():
        source = folder / f"{name}{SOURCE_SUFFIX}"
        if source not in files or not _current(source, name):
            removed += files
            continue
        kept.append((source.stat().st_mtime, sum(f.stat().st_size for f in files), files))
    total = sum(size for _, size, _ in kept)
    for _, size, files in sorted(kept, key=lambda group: group[0]):
        if total <= max_bytes:
            break
        removed += files
        total -= size
    for entry in removed:
        entry.unlink(missing_ok=True)
    return removed


class LineIndex:
    """Where each line of one JSONL file starts; read a range of lines by seeking.

    The index grows on demand: opening page 1,000 of a 1 GiB file reads only as far as page
    1,000 ends (a prefix index, `<name>.part`), and the whole file is read once, when a page
    near the end (or the line count) is first asked for (`<name>.lines`, complete).
    """

    def __init__(self, data: Path, root: Path) -> None:
        self.data = data
        self.size = data.stat().st_size
        name = _index_name(data)
        self.index = root / INDEX_DIR / f"{name}.lines"
        self._part = root / INDEX_DIR / f"{name}.part"
        _record_source(root / INDEX_DIR / f"{name}{SOURCE_SUFFIX}", data)

    @classmethod
    def open(cls, data: Path, root: Path) -> LineIndex:
        """The index of `data`, kept under `root/.reconciler/index/`.

        Raises:
            OSError: `data` cannot be read.
        """
        return cls(data, root)

    @property
    def complete(self) -> bool:
        return self.index.exists()

    def _known(self) -> int:
        path = self.index if self.complete else self._part
        try:
            return (path.stat().st_size - len(_FORMAT)) // 8
        except FileNotFoundError:
            return 0

    @property
    def count(self) -> int:
        """Lines in the file (reads the rest of the file once, if the index is a prefix)."""
        self._ensure(None)
        return self._known()

    def estimated_count(self) -> int:
        """The line count if known, else the prefix's average line length extrapolated."""
        if self.complete:
            return self._known()
        known = _read_starts(self._part)
        if len(known) < 2:
            return self.count
        return max(len(known), round(self.size * (len(known) - 1) / known[-1]))

    def _ensure(self, lines: int | None) -> None:
        """Make sure the starts of lines 0..`lines` are known (None: every line)."""
        if self.complete or (lines is not None and self._known() > lines):
            return
        with _lock_for(self._part):
            starts = _read_starts(self._part)
            if self.complete or (lines is not None and len(starts) > lines):
                return
            if not starts and self.size:
                starts.append(0)
            want = None if lines is None else lines + _EXTEND_LINES
            at_end = self._extend(starts, want)
            if at_end:
                _write_starts(self.index, starts)
                self._part.unlink(missing_ok=True)
            else:
                _write_starts(self._part, starts)

    def _extend(self, starts: array[int], want: int | None) -> bool:
        """Append line starts from the last known one until `want` are known; True at EOF."""
        base = starts[-1] if starts else self.size
        with self.data.open("rb") as handle:
            handle.seek(base)
            while base < self.size:
                block = handle.read(min(_READ_BLOCK, self.size - base))
                if not block:
                    break
                at = block.find(b"\n")
                while at != -1:
                    start = base + at + 1
                    if start < self.size and start > starts[-1]:
                        starts.append(start)
                        if want is not None and len(starts) > want:
                            return False
                    at = block.find(b"\n", at + 1)
                base += len(block)
        return True

    def _starts(self, first: int, n: int) -> list[int]:
        """Line starts of lines first..first+n-1, then the end of the last one."""
        self._ensure(first + n)
        path = self.index if self.complete else self._part
        values = list(_read_starts(path, first, n + 1))
        if len(values) < n + 1:
            values.append(self.size)
        return values

    def lines(self, first: int, n: int) -> list[tuple[int, bytes]]:
        """(line number, raw line without its newline) for up to `n` lines from `first`."""
        first, n = max(0, first), max(0, n)
        self._ensure(first + n)
        n = min(n, self._known() - first)
        if n <= 0:
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
        self._ensure(first)
        if first >= self._known():
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
                    return found, (number if start + read < self.size else None)
        return found, None


class KeyIndex:
    """Request key -> line number of one JSONL file, in SQLite beside the line index."""

    def __init__(self, lines: LineIndex) -> None:
        self._lines = lines
        self._path = lines.index.with_suffix(".keys.sqlite")  # named by the file, not the index

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
