"""On-disk state of the emulator: one SQLite database (WAL) plus blob files under the data dir.

Several processes may open the same data dir one after another or at once (an in-process
emulator per CLI command, a `serve` in another terminal), so every operation opens its own short
transaction with a busy timeout, and every change that must appear at once (a job's end state and
its output) is one transaction. Blobs are written under a temporary name and renamed into place
before the row that points at them is committed; a crash leaves at worst an orphan blob.
This module knows rows and files, not HTTP or the lifecycle rules; the tables and their rows
are `rows`, the connections and transactions `database`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import sqlite3
import string
from pathlib import Path

from reconciler.emulator.database import create_database, sqlite_transaction
from reconciler.emulator.rows import (
    ADDED_COLUMNS,
    SCHEMA,
    BatchRow,
    FileRow,
    PageToken,
    UploadRow,
    batch_row,
    file_row,
    insert_file,
    page,
)

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
        create_database(self._db_path, SCHEMA, ADDED_COLUMNS)

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
        return None if row is None else file_row(row)

    def list_files(
        self, page_size: int, token: PageToken | None
    ) -> tuple[list[FileRow], PageToken | None]:
        with self.transaction() as db:
            rows = page(db, "files", page_size, token)
        items = [file_row(r) for r in rows[:page_size]]
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
            insert_file(db, file)
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
            insert_file(db, file)

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
        return None if row is None else batch_row(row)

    def list_batches(
        self, page_size: int, token: PageToken | None
    ) -> tuple[list[BatchRow], PageToken | None]:
        with self.transaction() as db:
            rows = page(db, "batches", page_size, token)
        items = [batch_row(r) for r in rows[:page_size]]
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
                insert_file(db, output)
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
