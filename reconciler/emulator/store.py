"""On-disk state of the emulator: one SQLite database (WAL) plus blob files under the data dir.

Several processes may open the same data dir one after another or at once (an in-process
emulator per CLI command, a `serve` in another terminal), so every operation opens its own short
transaction with a busy timeout, and every change that must appear at once (a job's end state and
its output) is one transaction. Blobs are written under a temporary name and renamed into place
before the row that points at them is committed; a crash leaves at worst an orphan blob.
This module knows rows and files, not HTTP or the lifecycle rules.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import secrets
import shutil
import sqlite3
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, display_name TEXT, mime_type TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL, create_time REAL NOT NULL, expire_time REAL NOT NULL,
    source TEXT NOT NULL, available_time REAL NOT NULL, undeletable INTEGER NOT NULL,
    active_time REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_order ON files (create_time DESC, id DESC);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, file_id TEXT NOT NULL, display_name TEXT, mime_type TEXT NOT NULL,
    declared_size INTEGER, received INTEGER NOT NULL, create_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, display_name TEXT,
    create_time REAL NOT NULL, job_seconds REAL NOT NULL, pending_seconds REAL NOT NULL,
    expire_after REAL NOT NULL, forced_end TEXT, input_file TEXT, inline INTEGER NOT NULL,
    request_count INTEGER NOT NULL, state TEXT, end_time REAL, success_count INTEGER NOT NULL,
    failed_count INTEGER NOT NULL, output_file TEXT, request_error_rate REAL NOT NULL,
    shuffle INTEGER NOT NULL, undeletable_results INTEGER NOT NULL, results_delay REAL NOT NULL,
    file_ttl REAL NOT NULL, priority INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, fault_seed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_order ON batches (create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expire_time);
CREATE INDEX IF NOT EXISTS batches_open ON batches (create_time + MIN(job_seconds, expire_after))
    WHERE state IS NULL;
CREATE INDEX IF NOT EXISTS batches_open_model
    ON batches (model, create_time + MIN(job_seconds, expire_after)) WHERE state IS NULL;
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), file_bytes INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS files_added AFTER INSERT ON files
    BEGIN UPDATE totals SET file_bytes = file_bytes + NEW.size_bytes; END;
CREATE TRIGGER IF NOT EXISTS files_removed AFTER DELETE ON files
    BEGIN UPDATE totals SET file_bytes = file_bytes - OLD.size_bytes; END;
CREATE TRIGGER IF NOT EXISTS files_resized AFTER UPDATE OF size_bytes ON files
    BEGIN UPDATE totals SET file_bytes = file_bytes - OLD.size_bytes + NEW.size_bytes; END;
INSERT OR IGNORE INTO totals VALUES (0, (SELECT COALESCE(SUM(size_bytes), 0) FROM files));
COMMIT;
"""
# The counts every create asks for (open jobs, a model's enqueued tokens) and the expiry sweep
# of every Files call read only the rows they need through these indexes, and the bytes stored
# (asked by every upload) are kept summed by triggers: scanning the whole table made each call
# cost the number of jobs or files ever made (O(N^2) over a large apply). The sum starts from
# the files already there when a data dir made before it is opened.
_ADDED_COLUMNS = (
    ("files", "active_time", "REAL NOT NULL DEFAULT 0"),
    ("batches", "priority", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "input_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "fault_seed", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns later releases added: a data dir written before them gains them on open."""

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int) -> str:
    """A random id of lower-case alphanumerics: the SDK cuts file URIs to `[a-z0-9]+` (pitfall 15).

    One draw from the system's randomness, written in base 36 (a `secrets.choice` per character
    was a draw each, some 5 % of the emulator's CPU per create)."""
    number = secrets.randbelow(len(_ID_ALPHABET) ** length)
    digits = []
    for _ in range(length):
        number, digit = divmod(number, len(_ID_ALPHABET))
        digits.append(_ID_ALPHABET[digit])
    return "".join(digits)


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


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    display_name: str | None
    mime_type: str
    size_bytes: int
    sha256: str
    create_time: float
    expire_time: float
    source: str
    available_time: float
    undeletable: bool
    active_time: float = 0.0
    """Until then the file is PROCESSING (media files); ACTIVE from then on."""


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: str
    file_id: str
    display_name: str | None
    mime_type: str
    declared_size: int | None
    received: int
    create_time: float


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: str
    kind: str
    """"generate" or "embed"."""
    model: str
    display_name: str | None
    create_time: float
    job_seconds: float
    pending_seconds: float
    expire_after: float
    """Real seconds after create at which a job still open becomes EXPIRED."""
    forced_end: str | None
    input_file: str | None
    inline: bool
    request_count: int
    state: str | None
    """Stored terminal state; None while the state is derived from the clock."""
    end_time: float | None
    success_count: int
    failed_count: int
    output_file: str | None
    request_error_rate: float
    shuffle: bool
    undeletable_results: bool
    results_delay: float
    file_ttl: float
    """Real seconds a results file lives."""
    priority: int = 0
    input_tokens: int = 0
    """Estimated input tokens (input bytes / 4): what the job holds of its model's quota."""
    fault_seed: int = 0
    """Seeds the job's own faults (which requests fail, the shuffle of inline responses):
    drawn from the emulator's seed in creation order (`faults.job_seed`), never the random id."""


@dataclass(frozen=True, slots=True)
class PageToken:
    """Keyset position (create_time, id) of the last item of a page: stable under inserts."""

    create_time: float
    id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.create_time!r}|{self.id}".encode()).decode()

    @staticmethod
    def decode(token: str) -> PageToken:
        """Raises ValueError for a token this emulator did not issue."""
        try:
            raw = base64.urlsafe_b64decode(token.encode()).decode()
            time_text, ident = raw.split("|", 1)
            return PageToken(float(time_text), ident)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid page token {token!r}") from exc


class Store:
    """The emulator's database and blob directories under one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "blobs" / "files"
        self.uploads_dir = data_dir / "blobs" / "uploads"
        self.inline_dir = data_dir / "blobs" / "inline"
        self.tmp_dir = data_dir / "blobs" / "tmp"
        for directory in (self.files_dir, self.uploads_dir, self.inline_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._db_path = data_dir / "emulator.sqlite3"
        db = sqlite3.connect(self._db_path, timeout=30.0, isolation_level=None)
        try:
            # WAL lets readers in other processes proceed while one process writes; the mode
            # is stored in the database file, so setting it once here is enough.
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            for table, column, kind in _ADDED_COLUMNS:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        finally:
            db.close()

    def transaction(
        self, immediate: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self._db_path, immediate=immediate)

    # ---- blobs -----------------------------------------------------------------------------

    def file_blob(self, file_id: str) -> Path:
        return self.files_dir / file_id

    def upload_blob(self, upload_id: str) -> Path:
        return self.uploads_dir / f"{upload_id}.part"

    def inline_blob(self, batch_id: str, what: str) -> Path:
        return self.inline_dir / f"{batch_id}.{what}.json"

    def input_snapshot(self, batch_id: str) -> Path:
        return self.inline_dir / f"{batch_id}.input.jsonl"

    def snapshot_input(self, file_id: str, batch_id: str) -> None:
        """Pin a job's input at create time (a hard link: O(1), no copy), so deleting or
        expiring the input file later does not change what the job reads when it runs."""
        source, target = self.file_blob(file_id), self.input_snapshot(batch_id)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def temp_path(self) -> Path:
        return self.tmp_dir / f"{new_id(16)}.tmp"

    # ---- files -----------------------------------------------------------------------------

    def purge_expired_files(self, now: float) -> None:
        """Files vanish 48 h (scaled) after creation, as the service deletes them."""
        with self.transaction() as db:  # the common case, nothing expired, takes no write lock
            expired = db.execute("SELECT 1 FROM files WHERE expire_time <= ? LIMIT 1", (now,))
            if expired.fetchone() is None:
                return
        with self.transaction(immediate=True) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM files WHERE expire_time <= ?", (now,))]
            db.execute("DELETE FROM files WHERE expire_time <= ?", (now,))
        for file_id in ids:
            self.file_blob(file_id).unlink(missing_ok=True)

    def used_bytes(self) -> int:
        with self.transaction() as db:
            files = db.execute("SELECT file_bytes FROM totals").fetchone()[0]
            pending = db.execute(
                "SELECT COALESCE(SUM(COALESCE(declared_size, received)), 0) FROM uploads"
            ).fetchone()[0]
        return int(files) + int(pending)

    def file_exists(self, file_id: str) -> bool:
        with self.transaction() as db:
            row = db.execute("SELECT 1 FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None:
                row = db.execute("SELECT 1 FROM uploads WHERE file_id = ?", (file_id,)).fetchone()
        return row is not None

    def get_file(self, file_id: str) -> FileRow | None:
        with self.transaction() as db:
            row = db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None else _file_row(row)

    def list_files(
        self, page_size: int, token: PageToken | None
    ) -> tuple[list[FileRow], PageToken | None]:
        with self.transaction() as db:
            rows = _page(db, "files", page_size, token)
        items = [_file_row(r) for r in rows[:page_size]]
        next_token = (
            PageToken(items[-1].create_time, items[-1].id) if len(rows) > page_size else None
        )
        return items, next_token

    def insert_file(self, file: FileRow, blob: bytes | None = None) -> bool:
        """Add a file that no upload made (registered, or seeded by the admin API); False
        when the id is taken."""
        if blob is not None:
            temp = self.temp_path()
            temp.write_bytes(blob)
            os.replace(temp, self.file_blob(file.id))
        with self.transaction(immediate=True) as db:
            if db.execute("SELECT 1 FROM files WHERE id = ?", (file.id,)).fetchone():
                return False
            _insert_file(db, file)
        return True

    def delete_file(self, file_id: str) -> bool:
        with self.transaction(immediate=True) as db:
            deleted = db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount
        if deleted:
            self.file_blob(file_id).unlink(missing_ok=True)
        return bool(deleted)

    # ---- uploads ---------------------------------------------------------------------------

    def start_upload(self, upload: UploadRow) -> None:
        self.upload_blob(upload.id).touch()
        with self.transaction(immediate=True) as db:
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.id,
                    upload.file_id,
                    upload.display_name,
                    upload.mime_type,
                    upload.declared_size,
                    upload.received,
                    upload.create_time,
                ),
            )

    def get_upload(self, upload_id: str) -> UploadRow | None:
        with self.transaction() as db:
            row = db.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return None if row is None else UploadRow(*row)

    def set_upload_received(self, upload_id: str, received: int) -> None:
        with self.transaction(immediate=True) as db:
            db.execute("UPDATE uploads SET received = ? WHERE id = ?", (received, upload_id))

    def finalize_upload(self, upload: UploadRow, file: FileRow) -> None:
        """Move the received bytes into place and turn the upload session into a file."""
        os.replace(self.upload_blob(upload.id), self.file_blob(file.id))
        with self.transaction(immediate=True) as db:
            db.execute("DELETE FROM uploads WHERE id = ?", (upload.id,))
            _insert_file(db, file)

    # ---- batches ---------------------------------------------------------------------------

    def insert_batch(self, batch: BatchRow) -> bool:
        """Store a new job; False when its id is taken (ids chosen through the admin API)."""
        values = dataclasses.asdict(batch)
        values["inline"] = int(batch.inline)
        values["shuffle"] = int(batch.shuffle)
        values["undeletable_results"] = int(batch.undeletable_results)
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        with self.transaction(immediate=True) as db:
            if db.execute("SELECT 1 FROM batches WHERE id = ?", (batch.id,)).fetchone():
                return False
            db.execute(f"INSERT INTO batches ({columns}) VALUES ({marks})", values)
        return True

    def set_priority(self, batch_id: str, priority: int) -> None:
        with self.transaction(immediate=True) as db:
            db.execute("UPDATE batches SET priority = ? WHERE id = ?", (priority, batch_id))

    def get_batch(self, batch_id: str) -> BatchRow | None:
        with self.transaction() as db:
            row = db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else _batch_row(row)

    def list_batches(
        self, page_size: int, token: PageToken | None
    ) -> tuple[list[BatchRow], PageToken | None]:
        with self.transaction() as db:
            rows = _page(db, "batches", page_size, token)
        items = [_batch_row(r) for r in rows[:page_size]]
        next_token = (
            PageToken(items[-1].create_time, items[-1].id) if len(rows) > page_size else None
        )
        return items, next_token

    def open_batches_due_before(self, now: float) -> int:
        """How many jobs have no stored end state and are not past their deadline: the jobs
        that count against the concurrent-job cap."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM batches WHERE state IS NULL"
                " AND create_time + MIN(job_seconds, expire_after) > ?",
                (now,),
            ).fetchone()
        return int(row[0])

    def open_tokens_due_before(self, now: float, model: str) -> int:
        """Estimated input tokens of `model`'s jobs that count against the concurrent-job cap:
        what counts against the model's enqueued-token quota."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(input_tokens), 0) FROM batches WHERE state IS NULL"
                " AND model = ? AND create_time + MIN(job_seconds, expire_after) > ?",
                (model, now),
            ).fetchone()
        return int(row[0])

    def end_batch(
        self,
        batch_id: str,
        state: str,
        end_time: float,
        success: int = 0,
        failed: int = 0,
        output: FileRow | None = None,
        output_blob: Path | None = None,
    ) -> bool:
        """Store a terminal state (and its output) atomically, only if the job is still open.

        The output blob is renamed into place inside the write transaction, so a reader sees
        either no end state and no file, or both (the service has been seen to report SUCCEEDED
        before the file exists; clients should not have to poll twice here).
        Returns False when another request or process ended the job first.
        """
        with self.transaction(immediate=True) as db:
            current = db.execute("SELECT state FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if current is None or current[0] is not None:
                return False
            if output is not None:
                if output_blob is not None:
                    os.replace(output_blob, self.file_blob(output.id))
                db.execute("DELETE FROM files WHERE id = ?", (output.id,))
                _insert_file(db, output)
            db.execute(
                "UPDATE batches SET state = ?, end_time = ?, success_count = ?, failed_count = ?,"
                " output_file = ? WHERE id = ?",
                (state, end_time, success, failed, None if output is None else output.id, batch_id),
            )
        return True

    def discard_input(self, batch_id: str) -> None:
        """Remove the pinned input of a job that was refused before it was stored."""
        self.inline_blob(batch_id, "requests").unlink(missing_ok=True)
        self.input_snapshot(batch_id).unlink(missing_ok=True)

    def delete_batch(self, batch_id: str) -> bool:
        with self.transaction(immediate=True) as db:
            deleted = db.execute("DELETE FROM batches WHERE id = ?", (batch_id,)).rowcount
        if deleted:
            for what in ("requests", "responses"):
                self.inline_blob(batch_id, what).unlink(missing_ok=True)
            self.input_snapshot(batch_id).unlink(missing_ok=True)
        return bool(deleted)


def _page(
    db: sqlite3.Connection, table: str, page_size: int, token: PageToken | None
) -> list[tuple[object, ...]]:
    # Newest first, like the service; one extra row tells whether another page exists.
    if token is None:
        cursor = db.execute(
            f"SELECT * FROM {table} ORDER BY create_time DESC, id DESC LIMIT ?", (page_size + 1,)
        )
    else:
        cursor = db.execute(
            f"SELECT * FROM {table} WHERE (create_time < ?) OR (create_time = ? AND id < ?)"
            " ORDER BY create_time DESC, id DESC LIMIT ?",
            (token.create_time, token.create_time, token.id, page_size + 1),
        )
    return list(cursor)


def _insert_file(db: sqlite3.Connection, file: FileRow) -> None:
    values = dataclasses.asdict(file)
    values["undeletable"] = int(file.undeletable)
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    db.execute(f"INSERT INTO files ({columns}) VALUES ({marks})", values)


def _file_row(row: tuple[object, ...]) -> FileRow:
    (ident, display, mime, size, sha, created, expires, source, available, undeletable, active) = (
        row
    )
    return FileRow(
        str(ident),
        None if display is None else str(display),
        str(mime),
        int(str(size)),
        str(sha),
        float(str(created)),
        float(str(expires)),
        str(source),
        float(str(available)),
        bool(undeletable),
        float(str(active)),
    )


def _batch_row(row: tuple[object, ...]) -> BatchRow:
    values = list(row)

    def opt_str(value: object) -> str | None:
        return None if value is None else str(value)

    def opt_float(value: object) -> float | None:
        return None if value is None else float(str(value))

    return BatchRow(
        id=str(values[0]),
        kind=str(values[1]),
        model=str(values[2]),
        display_name=opt_str(values[3]),
        create_time=float(str(values[4])),
        job_seconds=float(str(values[5])),
        pending_seconds=float(str(values[6])),
        expire_after=float(str(values[7])),
        forced_end=opt_str(values[8]),
        input_file=opt_str(values[9]),
        inline=bool(values[10]),
        request_count=int(str(values[11])),
        state=opt_str(values[12]),
        end_time=opt_float(values[13]),
        success_count=int(str(values[14])),
        failed_count=int(str(values[15])),
        output_file=opt_str(values[16]),
        request_error_rate=float(str(values[17])),
        shuffle=bool(values[18]),
        undeletable_results=bool(values[19]),
        results_delay=float(str(values[20])),
        file_ttl=float(str(values[21])),
        priority=int(str(values[22])),
        input_tokens=int(str(values[23])),
        fault_seed=int(str(values[24])),
    )
