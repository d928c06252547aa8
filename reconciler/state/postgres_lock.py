"""The PostgreSQL state lock: a *session* advisory lock keyed by the workspace, held on a
dedicated connection for the lock's lifetime (so it dies with the process that holds it), and a
row of `reconciler_state_locks` naming its holder.

Each method runs on the connection it is given and lets `psycopg.Error` through: the backend
words it.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import psycopg

from reconciler.state.backend import LockHeldError, LockInfo


def advisory_key(workspace: str) -> int:
    """A signed 64-bit advisory lock key derived from the workspace (stable across versions)."""
    digest = hashlib.sha256(f"reconciler-state:{workspace}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    """The lock of one workspace."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.key = advisory_key(workspace)

    def take(self, conn: psycopg.Connection[Any], info: LockInfo, *, location: str) -> None:
        """Take the lock on `conn` (a connection of its own: closing it releases the lock) and
        record `info` as its holder.

        Raises:
            LockHeldError: someone holds it (named when their row says who); `conn` is closed.
        """
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if row is None or not row[0]:
            holder_row = conn.execute(
                "SELECT info FROM reconciler_state_locks WHERE workspace = %s",
                (self.workspace,),
            ).fetchone()
            conn.close()
            holder = LockInfo.from_json(holder_row[0]) if holder_row else None
            raise LockHeldError(location, holder)
        conn.execute(
            "INSERT INTO reconciler_state_locks (workspace, lock_id, backend_pid, info)"
            " VALUES (%s, %s, pg_backend_pid(), %s)"
            " ON CONFLICT (workspace) DO UPDATE SET lock_id = EXCLUDED.lock_id,"
            " backend_pid = EXCLUDED.backend_pid, info = EXCLUDED.info, locked_at = now()",
            (self.workspace, info.id, info.to_json()),
        )

    def release(self, conn: psycopg.Connection[Any], lock_id: str) -> None:
        """Release the lock taken on `conn` under `lock_id`, and close `conn`."""
        # Closing the session releases the advisory lock even if these statements fail (e.g.
        # after force-unlock terminated it); the row is only holder info.
        with contextlib.suppress(psycopg.Error):
            conn.execute(
                "DELETE FROM reconciler_state_locks WHERE workspace = %s AND lock_id = %s",
                (self.workspace, lock_id),
            )
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        conn.close()

    def recorded_holder(self, conn: psycopg.Connection[Any]) -> tuple[str, int, str] | None:
        """The holder's row: its lock id, server process id and `LockInfo` JSON (None: none)."""
        row = conn.execute(
            "SELECT lock_id, backend_pid, info FROM reconciler_state_locks WHERE workspace = %s",
            (self.workspace,),
        ).fetchone()
        return (str(row[0]), int(row[1]), str(row[2])) if row is not None else None

    def holding_sessions(self, conn: psycopg.Connection[Any]) -> list[int]:
        """The server process ids of the sessions that hold the lock (none: it is free)."""
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchall()
        return [int(pid) for (pid,) in rows]

    def break_lock(self, conn: psycopg.Connection[Any], sessions: list[int], lock_id: str) -> None:
        """Terminate the holding `sessions` and forget the holder's row."""
        # Terminating the holder's session is what releases a session advisory lock; the
        # holder's later writes (if it is merely stuck) still meet the serial check.
        for pid in sessions:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        conn.execute(
            "DELETE FROM reconciler_state_locks WHERE workspace = %s AND lock_id = %s",
            (self.workspace, lock_id),
        )
