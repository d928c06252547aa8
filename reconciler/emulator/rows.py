"""The emulator's tables (files, upload sessions, batch jobs) and their rows as frozen values:
the schema, what a data dir made by an earlier release gains on open, a row <-> its SQLite
tuple, and keyset pages (newest first, as the service lists)."""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
from dataclasses import dataclass

SCHEMA = """
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
ADDED_COLUMNS = (
    ("files", "active_time", "REAL NOT NULL DEFAULT 0"),
    ("batches", "priority", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "input_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "fault_seed", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns later releases added: a data dir written before them gains them on open."""


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


def page(
    db: sqlite3.Connection, table: str, page_size: int, token: PageToken | None
) -> list[tuple[object, ...]]:
    """Up to `page_size` + 1 rows of `table` after `token`."""
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


def insert_file(db: sqlite3.Connection, file: FileRow) -> None:
    """Add `file`'s row in the caller's transaction."""
    values = dataclasses.asdict(file)
    values["undeletable"] = int(file.undeletable)
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    db.execute(f"INSERT INTO files ({columns}) VALUES ({marks})", values)


def file_row(row: tuple[object, ...]) -> FileRow:
    """A `files` row as SQLite returns it -> `FileRow`."""
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


def batch_row(row: tuple[object, ...]) -> BatchRow:
    """A `batches` row as SQLite returns it -> `BatchRow`."""
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
