"""SQLite access shared by the emulator's stores (the Developer API's `Store`, the Vertex jobs):
a connection kept per thread and database file, and one short transaction per operation.

Several processes may open the same data dir one after another or at once (an in-process
emulator per CLI command, a `serve` in another terminal), so every operation opens its own short
transaction with a busy timeout.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path


def create_database(path: Path, schema: str, added: Sequence[tuple[str, str, str]]) -> None:
    """Create the tables of `schema` in the database at `path` where missing, and the columns
    later releases `added` ((table, column, declaration) each) to tables made before them."""
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        # WAL lets readers in other processes proceed while one process writes; the mode
        # is stored in the database file, so setting it once here is enough.
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
        for table, column, kind in added:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    finally:
        db.close()


@contextlib.contextmanager
def sqlite_transaction(path: Path, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """One transaction on the calling thread's connection to `path`; `immediate` takes the
    write lock up front so a read-check-write sequence cannot interleave with another process
    doing the same."""
    db = _connection(path)
    try:
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except BaseException:
        _discard(path, db)  # whatever state it was left in, the next transaction starts afresh
        raise


_MAX_CONNECTIONS = 4
"""Connections one thread keeps open (a process serves one data dir, two with Vertex)."""
_threads = threading.local()


def _connection(path: Path) -> sqlite3.Connection:
    """The calling thread's open connection to the database file at `path`.

    Opening a connection and setting its pragmas for every transaction was most of the
    emulator's CPU per call. A connection is kept per thread (sqlite3 connections are not
    shared between threads) and per file: keyed by the file's inode, so a data dir removed and
    made again at the same path is never read through a connection to the removed file.
    """
    cache: dict[tuple[Path, int, int], sqlite3.Connection] = _threads.__dict__.setdefault(
        "connections", {}
    )
    try:
        st = os.stat(path)
        key = (path, st.st_dev, st.st_ino)
    except FileNotFoundError:
        key = None
    db = cache.get(key) if key is not None else None
    if db is not None:
        return db
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA synchronous=NORMAL")
    if key is None:  # made by this connect: no other connection can be to it yet
        st = os.stat(path)
        key = (path, st.st_dev, st.st_ino)
    for old in [k for k in cache if k[0] == path]:  # to a file since removed
        cache.pop(old).close()
    while len(cache) >= _MAX_CONNECTIONS:
        cache.pop(next(iter(cache))).close()  # the oldest
    cache[key] = db
    return db


def _discard(path: Path, db: sqlite3.Connection) -> None:
    cache: dict[tuple[Path, int, int], sqlite3.Connection] = _threads.__dict__.get(
        "connections", {}
    )
    for key in [k for k, v in cache.items() if v is db]:
        del cache[key]
    db.close()
