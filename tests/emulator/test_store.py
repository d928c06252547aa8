"""The emulator's store at scale: what every call asks costs the rows it needs, not every row
ever made, and the kept sums and connections stay true to the database file."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from reconciler.emulator.rows import FileRow
from reconciler.emulator.store import Store


def _file(file_id: str, size: int, expire: float) -> FileRow:
    return FileRow(
        file_id, None, "application/jsonl", size, "x", 0.0, expire, "UPLOADED", 0.0, False
    )


def test_stored_bytes_follow_inserts_deletes_and_expiry(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.insert_file(_file("a", 10, expire=100.0))
    store.insert_file(_file("b", 32, expire=5.0))
    assert store.used_bytes() == 42
    store.delete_file("a")
    assert store.used_bytes() == 32
    store.purge_expired_files(now=10.0)
    assert store.used_bytes() == 0
    assert store.get_file("b") is None


def test_a_data_dir_made_before_the_sum_was_kept_starts_from_its_files(tmp_path: Path) -> None:
    Store(tmp_path).insert_file(_file("a", 7, expire=100.0))
    with sqlite3.connect(tmp_path / "emulator.sqlite3") as db:  # as an older emulator left it
        db.executescript(
            "DROP TRIGGER files_added; DROP TRIGGER files_removed; DROP TRIGGER files_resized;"
            "DROP TABLE totals;"
        )
        db.execute(
            "INSERT INTO files SELECT 'b', display_name, mime_type, 5, sha256,"
            " create_time, expire_time, source, available_time, undeletable, active_time"
            " FROM files WHERE id = 'a'"
        )

    assert Store(tmp_path).used_bytes() == 12


@pytest.mark.parametrize(
    ("query", "args"),
    [
        (
            "SELECT COUNT(*) FROM batches WHERE state IS NULL"
            " AND create_time + MIN(job_seconds, expire_after) > ?",
            (1.0,),
        ),
        (
            "SELECT COALESCE(SUM(input_tokens), 0) FROM batches WHERE state IS NULL"
            " AND model = ? AND create_time + MIN(job_seconds, expire_after) > ?",
            ("m", 1.0),
        ),
        ("SELECT 1 FROM files WHERE expire_time <= ? LIMIT 1", (1.0,)),
    ],
)
def test_what_every_create_and_upload_asks_reads_no_whole_table(
    tmp_path: Path, query: str, args: tuple[object, ...]
) -> None:
    with Store(tmp_path).transaction() as db:
        plan = " ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + query, args))
    assert "SCAN" not in plan, plan


def test_a_data_dir_made_again_at_the_same_path_is_read_afresh(tmp_path: Path) -> None:
    Store(tmp_path / "data").insert_file(_file("old", 1, expire=100.0))
    shutil.rmtree(tmp_path / "data")

    store = Store(tmp_path / "data")

    assert store.get_file("old") is None
    assert store.used_bytes() == 0
