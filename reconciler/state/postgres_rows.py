"""A workspace's state as PostgreSQL rows: the header in the workspace's row, one row per
record (as `codec.encode_record` stores it), and the details blobs the records refer to.

Each function runs in the caller's connection (and transaction) and lets `psycopg.Error`
through: the backend words it. A workspace written before format version 5 holds the whole
document in its row; it is read as such, and its first write converts it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import psycopg

from reconciler.state import codec
from reconciler.state.backend import Blob
from reconciler.state.document import State
from reconciler.state.stored_form import DETAILS_BLOB

ROWS_FORMAT = 5
"""The first format version stored as one row per record; older rows hold the whole document."""


def load(conn: psycopg.Connection[Any], workspace: str, *, source: str) -> State | None:
    """The stored state (None if the workspace has none), in either storage form."""
    row = conn.execute(
        "SELECT format_version, document FROM reconciler_state WHERE workspace = %s",
        (workspace,),
    ).fetchone()
    if row is None:
        return None

    def details(addresses: Collection[str]) -> dict[str, bytes]:
        found = conn.execute(
            "SELECT sha256, data FROM reconciler_state_blobs"
            " WHERE workspace = %s AND kind = %s AND sha256 = ANY(%s)",
            (workspace, DETAILS_BLOB, list(addresses)),
        ).fetchall()
        return {str(address): bytes(data) for address, data in found}

    if int(row[0]) < ROWS_FORMAT:
        # The whole document in one row.
        return codec.decode(row[1], source=source, blobs=details)
    raw = codec.parse(row[1], source=source)
    records = conn.execute(
        "SELECT name, record FROM reconciler_state_records WHERE workspace = %s",
        (workspace,),
    ).fetchall()
    # One parse of all records (as one JSON object) instead of one per row.
    joined = ",".join(f"{json.dumps(name)}:{record}" for name, record in records)
    raw["resources"] = codec.parse("{" + joined + "}", source=source)
    return codec.decode_raw(raw, source=source, blobs=details)


def write_records(
    conn: psycopg.Connection[Any], workspace: str, stored: State | None, new: State
) -> None:
    """Bring the record rows from `stored` (None: not stored as current rows yet) to `new`,
    with the details blobs the rows refer to, in the caller's transaction."""
    if stored is None:
        insert_blobs(conn, workspace, list(codec.state_blobs(new).values()))
        # A new workspace, or one converted from the one-row form: every record, by COPY.
        conn.execute("DELETE FROM reconciler_state_records WHERE workspace = %s", (workspace,))
        with conn.cursor().copy(
            "COPY reconciler_state_records (workspace, name, record) FROM STDIN"
        ) as copy:
            for name, record in new.resources.items():
                copy.write_row((workspace, name, codec.stored_record(name, record).decode()))
        return
    changes = codec.changed_records(stored, new)
    gone = changes.gone
    insert_blobs(conn, workspace, changes.blobs)
    changed = [(workspace, name, line.decode()) for name, line in changes.records]
    if changed:
        conn.cursor().executemany(
            "INSERT INTO reconciler_state_records (workspace, name, record)"
            " VALUES (%s, %s, %s) ON CONFLICT (workspace, name)"
            " DO UPDATE SET record = EXCLUDED.record",
            changed,
        )
    if gone:
        conn.execute(
            "DELETE FROM reconciler_state_records WHERE workspace = %s AND name = ANY(%s)",
            (workspace, gone),
        )


def insert_blobs(conn: psycopg.Connection[Any], workspace: str, blobs: Sequence[Blob]) -> None:
    """Store `blobs` in the workspace (content-addressed: one already there stays)."""
    if blobs:
        conn.cursor().executemany(
            "INSERT INTO reconciler_state_blobs (workspace, kind, sha256, data)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(workspace, b.kind, b.sha256, b.data) for b in blobs],
        )


def write_header(
    conn: psycopg.Connection[Any], workspace: str, new: State, *, exists: bool
) -> None:
    """Insert (`exists` False) or update the workspace's row: `new` without its records."""
    header = codec.encode_header(new).decode()
    if not exists:
        conn.execute(
            "INSERT INTO reconciler_state"
            " (workspace, lineage, serial, format_version, document)"
            " VALUES (%s, %s, %s, %s, %s)",
            (workspace, new.lineage, new.serial, new.format_version, header),
        )
        return
    conn.execute(
        "UPDATE reconciler_state SET serial = %s, format_version = %s,"
        " document = %s, updated_at = now() WHERE workspace = %s",
        (new.serial, new.format_version, header, workspace),
    )
