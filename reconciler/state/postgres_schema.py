"""The PostgreSQL state's tables, created on first use: a row per workspace, one per record, one
per lock holder and one per blob."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reconciler_state (
    workspace      text PRIMARY KEY,
    lineage        text NOT NULL,
    serial         bigint NOT NULL,
    format_version integer NOT NULL,
    document       text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS reconciler_state_records (
    workspace text NOT NULL,
    name      text NOT NULL,
    record    text NOT NULL,
    PRIMARY KEY (workspace, name)
);
CREATE TABLE IF NOT EXISTS reconciler_state_locks (
    workspace   text PRIMARY KEY,
    lock_id     text NOT NULL,
    backend_pid integer NOT NULL,
    info        text NOT NULL,
    locked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS reconciler_state_blobs (
    workspace text NOT NULL,
    kind      text NOT NULL,
    sha256    text NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (workspace, kind, sha256)
);
"""
_TABLES = (
    "reconciler_state",
    "reconciler_state_records",
    "reconciler_state_locks",
    "reconciler_state_blobs",
)
# Concurrent `CREATE TABLE IF NOT EXISTS` can still collide in the catalog (unique violation on
# pg_type), so first use serialises on this transaction-scoped advisory key.
_SCHEMA_LOCK_KEY = 0x7265636F6E63696C  # "reconcil"


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the tables that do not exist yet (usually none: one probe, no DDL, no lock).

    Raises:
        psycopg.Error: the caller words it.
    """
    probe = "SELECT " + " OR ".join(f"to_regclass('{t}') IS NULL" for t in _TABLES)
    row = conn.execute(probe).fetchone()
    if row is None or not row[0]:
        return  # the usual case: no DDL, no lock
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        fresh = conn.execute("SELECT to_regclass('reconciler_state') IS NULL").fetchone()
        conn.execute(_SCHEMA)
        if fresh is not None and fresh[0]:
            # lz4 halves the cost of writing a large document (pglz compression dominates a
            # 1,000-resource write). PostgreSQL < 14, or a build without lz4, refuses; the
            # default compression then stays, which is only slower.
            with contextlib.suppress(psycopg.Error), conn.transaction():
                conn.execute(
                    "ALTER TABLE reconciler_state ALTER COLUMN document SET COMPRESSION lz4"
                )
