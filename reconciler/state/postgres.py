"""The PostgreSQL backend: a row per workspace and one per record, serial-checked writes, an
advisory lock.

The URL is `postgresql://user:password@host:port/db?workspace=name`; without `workspace` the
row is the project's id (`project:` in reconciler.yaml), and with neither the backend refuses to
open: two repositories sharing a database must never share a row by accident, or each would
cancel and forget the other's jobs as "removed from the manifests". Tables are created on first
use (`postgres_schema`). The workspace's row holds the document without its records; each record
is a row of its own (`postgres_rows`). A write runs in one transaction that locks the
workspace's row, checks the serial (optimistic concurrency) and sends only the records that
changed, with the details blobs they refer to (`state.stored_form`), so its cost follows the
change, not the size of the state. Rows of an older format version are all rewritten by the
first write. The state lock is a session advisory lock held on a dedicated connection
(`postgres_lock`), so it dies with the process. The password never appears in a message: see
`postgres_url.redact_url`.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import psycopg
from psycopg import errors as pg_errors

from reconciler.clock import Clock
from reconciler.errors import StaleWriteError, StateError
from reconciler.state.backend import (
    Blob,
    LineageFactory,
    LockInfo,
    Sleep,
    StateBackend,
    check_blob,
    claim,
    detached,
    refuse_live_holder,
    retry_lock,
)
from reconciler.state.document import FORMAT_VERSION, State
from reconciler.state.postgres_lock import AdvisoryLock
from reconciler.state.postgres_rows import insert_blobs, load, write_header, write_records
from reconciler.state.postgres_schema import ensure_schema
from reconciler.state.postgres_url import parse_url
from reconciler.state.references import (
    BLOB_KINDS,
    Collected,
    detail_references,
    garbage,
    tokens,
)

_log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10


class PostgresBackend:
    """State in a PostgreSQL row per workspace; see the module docstring for the protocol."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        lineage_factory: LineageFactory,
        sleep: Sleep,
        rng: random.Random,
        project_id: str | None = None,
        connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self._target = parse_url(url, project_id)
        self._project_id = project_id
        self._clock = clock
        self._lineage_factory = lineage_factory
        self._sleep = sleep
        self._rng = rng
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._advisory = AdvisoryLock(self._target.workspace)
        # The last state read or written: lets a write decide "unchanged" without fetching
        # and decoding the stored document (apply writes after every step).
        self._cache: State | None = None
        self._locked = False
        self._wrote_locked = False
        """A write under the current lock changed the state: releasing it collects garbage."""

    @property
    def location(self) -> str:
        return self._target.redacted

    @property
    def workspace(self) -> str:
        return self._target.workspace

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- connections and errors -----------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._target.secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, doing: str, exc: psycopg.Error) -> NoReturn:
        detail = self._scrub(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        if "password authentication failed" in detail:
            raise StateError(
                f"cannot connect to PostgreSQL state {self.location}: {detail}",
                hint="check the user and password in the state URL",
            ) from None
        if isinstance(exc, psycopg.OperationalError) and doing == "connect":
            raise StateError(
                f"cannot connect to PostgreSQL state {self.location}: {detail}",
                hint="check that the server is running and reachable at that host and port",
            ) from None
        raise StateError(f"PostgreSQL state {self.location}: {doing} failed: {detail}") from None

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self._target.conninfo,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="reconciler",
            )
        except psycopg.Error as exc:
            self._fail("connect", exc)
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and self._conn.closed:
            self._conn = None
        if self._conn is None:
            conn = self._connect()
            try:
                ensure_schema(conn)
            except psycopg.Error as exc:
                conn.close()
                self._fail("creating the state tables", exc)
            self._conn = conn
        return self._conn

    # -- read ---------------------------------------------------------------------------------

    def read(self) -> State:
        conn = self._connection()
        try:
            with conn.transaction():
                # One snapshot for the header and the records: a concurrent write commits both
                # or neither as far as this read can see.
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                loaded = self._load(conn)
        except psycopg.Error as exc:
            self._fail("reading the state", exc)
        if loaded is None:
            return claim(State(lineage=self._lineage_factory()), self._project_id, self.location)
        self._cache = loaded
        return claim(detached(loaded), self._project_id, self.location)

    def _load(self, conn: psycopg.Connection[Any]) -> State | None:
        return load(conn, self.workspace, source=f"PostgreSQL state {self.location}")

    # -- write --------------------------------------------------------------------------------

    def write(self, state: State, expected_serial: int) -> State:
        state = claim(state, self._project_id, self.location)
        conn = self._connection()
        try:
            with conn.transaction():
                row = conn.execute(
                    "SELECT serial, lineage, format_version FROM reconciler_state"
                    " WHERE workspace = %s FOR UPDATE",
                    (self.workspace,),
                ).fetchone()
                stored_serial = int(row[0]) if row is not None else 0
                if expected_serial != stored_serial:
                    raise StaleWriteError(
                        f"state {self.location} is at serial {stored_serial}, but this write "
                        f"was based on serial {expected_serial}: someone else wrote it meanwhile",
                        hint="re-run the command so it starts from the current state",
                    )
                if row is not None and row[1] != state.lineage:
                    raise StateError(
                        f"refusing to write lineage {state.lineage} over state {self.location} "
                        f"of lineage {row[1]}"
                    )
                stored = self._stored_at(conn, stored_serial) if row is not None else None
                if stored is not None and stored.same_content(state):
                    return detached(stored)
                new = detached(state.model_copy(update={"serial": stored_serial + 1}))
                # Rows of an older format are all rewritten in the current one.
                current_rows = row is not None and int(row[2]) >= FORMAT_VERSION
                write_records(conn, self.workspace, stored if current_rows else None, new)
                write_header(conn, self.workspace, new, exists=row is not None)
                self._on_staged()
        except pg_errors.UniqueViolation:
            # Two first writes raced to insert the row: the loser's serial 0 is stale.
            raise StaleWriteError(
                f"state {self.location} was created by someone else while this write was based "
                "on an empty state",
                hint="re-run the command so it starts from the current state",
            ) from None
        except psycopg.Error as exc:
            self._fail("writing the state", exc)
        self._cache = new
        self._wrote_locked |= self._locked
        return detached(new)

    def _stored_at(self, conn: psycopg.Connection[Any], serial: int) -> State:
        if self._cache is not None and self._cache.serial == serial:
            return self._cache
        loaded = self._load(conn)
        assert loaded is not None  # the caller holds the row lock
        return loaded

    def _on_staged(self) -> None:
        """Called inside the write transaction after the new row is written, before COMMIT.

        A no-op; the torn-write tests kill the process here to prove the old state survives.
        """

    # -- lock ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float = 0.0) -> Iterator[LockInfo]:
        info = replace(info, path=self.location)
        self._connection()  # create tables (and report connection errors) before waiting
        conn = retry_lock(
            lambda: self._try_lock(info),
            timeout=timeout,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
            location=self.location,
        )
        self._locked, self._wrote_locked = True, False
        try:
            yield info
        finally:
            self._locked = False
            # Broken by force-unlock (its session terminated), the lock is another command's
            # now: a blob it stored for its next write would be garbage yet.
            if self._wrote_locked and self._session_alive(conn):
                self._collect_quietly()
            self._advisory.release(conn, info.id)

    @staticmethod
    def _session_alive(conn: psycopg.Connection[Any]) -> bool:
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _collect_quietly(self) -> None:
        """Collect garbage on releasing a lock under which this backend wrote: the command's
        work is stored already, so a failure here is only logged (`state gc` reports it)."""
        try:
            collected = self.collect_garbage()
        except StateError as exc:
            _log.debug("blob collection of %s failed: %s", self.location, exc)
            return
        _log.debug("blob collection of %s: %s", self.location, collected)

    def _try_lock(self, info: LockInfo) -> psycopg.Connection[Any]:
        # A dedicated connection: the session advisory lock lives exactly as long as it does,
        # so a killed holder's lock is released when the server sees its socket close.
        conn = self._connect()
        try:
            self._advisory.take(conn, info, location=self.location)
        except psycopg.Error as exc:
            conn.close()
            self._fail("taking the state lock", exc)
        return conn

    def force_unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        conn = self._connection()
        try:
            row = self._advisory.recorded_holder(conn)
            sessions = self._advisory.holding_sessions(conn)
        except psycopg.Error as exc:
            self._fail("reading the state lock", exc)
        if not sessions:
            raise StateError(f"state {self.location} is not locked")
        if row is None or row[0] != lock_id:
            held_by = f"lock id {row[0]}" if row else "a holder that recorded no lock info"
            raise StateError(
                f"lock id {lock_id} does not match the lock on {self.location} (held under "
                f"{held_by})"
            )
        holder = LockInfo.from_json(row[2]) or LockInfo(
            id=lock_id,
            operation="(unknown)",
            who="(unknown)",
            host="(unknown)",
            pid=row[1],
            created=self._clock.now(),
            path=self.location,
        )
        refuse_live_holder(holder, self.location, force=force)
        try:
            self._advisory.break_lock(conn, sessions, lock_id)
        except psycopg.Error as exc:
            self._fail("breaking the state lock", exc)
        return holder

    # -- blobs --------------------------------------------------------------------------------

    def put_blob(self, kind: str, sha256: str, data: bytes) -> None:
        self.put_blobs((Blob(kind, sha256, data),))

    def put_blobs(self, blobs: Sequence[Blob]) -> None:
        for blob in blobs:
            check_blob(blob.kind, blob.sha256, blob.data)
        if not blobs:
            return
        try:
            insert_blobs(self._connection(), self.workspace, blobs)
        except psycopg.Error as exc:
            self._fail("storing a blob", exc)

    def collect_garbage(self) -> Collected:
        """Delete the workspace's blobs no record refers to (`state.references`), in one
        transaction that holds the workspace's row (no write interleaves; a kill before COMMIT
        deletes nothing). A read runs in one snapshot, so it never sees the records of one
        version and the blobs of another."""
        conn = self._connection()
        try:
            with conn.transaction():
                row = conn.execute(
                    "SELECT serial FROM reconciler_state WHERE workspace = %s FOR UPDATE",
                    (self.workspace,),
                ).fetchone()
                if row is None:
                    return Collected(skipped=f"no state in {self.location} refers to any blob yet")
                keep = detail_references(self._stored_at(conn, int(row[0])))
                # The details addresses are on the records' rows (or, before ROWS_FORMAT, in
                # the document): scanned as text, not decoded again.
                texts = conn.execute(
                    "SELECT document FROM reconciler_state WHERE workspace = %s UNION ALL"
                    " SELECT record FROM reconciler_state_records WHERE workspace = %s",
                    (self.workspace, self.workspace),
                ).fetchall()
                keep |= tokens("\n".join(str(text) for (text,) in texts).encode())
                stored = conn.execute(
                    "SELECT kind, sha256, octet_length(data) FROM reconciler_state_blobs"
                    " WHERE workspace = %s AND kind = ANY(%s)",
                    (self.workspace, list(BLOB_KINDS)),
                ).fetchall()
                sizes = {(str(k), str(a)): int(n) for k, a, n in stored}
                removed = removed_bytes = 0
                for kind in BLOB_KINDS:
                    doomed = garbage((a for k, a in sizes if k == kind), keep)
                    if not doomed:
                        continue
                    conn.execute(
                        "DELETE FROM reconciler_state_blobs"
                        " WHERE workspace = %s AND kind = %s AND sha256 = ANY(%s)",
                        (self.workspace, kind, doomed),
                    )
                    removed += len(doomed)
                    removed_bytes += sum(sizes[kind, a] for a in doomed)
                self._on_collecting()
        except psycopg.Error as exc:
            self._fail("collecting unreferenced blobs", exc)
        return Collected(removed=removed, removed_bytes=removed_bytes, kept=len(sizes) - removed)

    def _on_collecting(self) -> None:
        """Called inside a collection's transaction after its deletions, before COMMIT.

        A no-op; the kill tests stop the process here to prove nothing is deleted then.
        """

    def get_blob(self, kind: str, sha256: str) -> bytes | None:
        check_blob(kind, sha256)
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT data FROM reconciler_state_blobs"
                    " WHERE workspace = %s AND kind = %s AND sha256 = %s",
                    (self.workspace, kind, sha256),
                )
                .fetchone()
            )
        except psycopg.Error as exc:
            self._fail("reading a blob", exc)
        return bytes(row[0]) if row is not None else None


if TYPE_CHECKING:
    # Fails type checking if PostgresBackend stops satisfying the whole protocol.
    def _satisfies_protocol(backend: PostgresBackend) -> StateBackend:
        return backend
