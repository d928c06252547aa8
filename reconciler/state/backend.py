"""The StateBackend protocol, composed of small protocols, plus LockInfo and the lock retry helper.

As Terraform's statemgr: reading, writing, locking and blob storage are separate protocols and
`StateBackend` is their union; `LocalBackend` and `PostgresBackend` implement it, and one contract
suite (tests/integration/state) runs against both. Waiting for a lock (backoff + jitter) lives
here, outside the backends, which only know how to *try* once. This module knows no
implementation: choosing one from the project's setting is `reconciler.state.registry`'s job.
"""

from __future__ import annotations

import getpass
import json
import os
import random
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from reconciler import __version__
from reconciler.clock import Clock, SystemClock
from reconciler.errors import StateError, StateLockedError
from reconciler.state.document import State
from reconciler.state.references import Collected
from reconciler.state.stored_form import Blob

# Blob is defined beside the codec, which produces the records' details blobs; Collected beside
# what a collection keeps.
__all__ = ["Blob", "Collected"]

LineageFactory = Callable[[], str]
Sleep = Callable[[float], None]

_BLOB_KIND = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def new_lineage() -> str:
    """A fresh lineage: a random uuid, fixed for the life of a state."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds (or asks for) the state lock; stored beside the lock so others can name them."""

    id: str
    """Random id; `reconciler force-unlock <id>` must quote it, so a typo cannot break a lock."""
    operation: str
    """The command that took the lock, e.g. `reconciler apply` (never its arguments: they may
    hold a URL with a password)."""
    who: str
    """user@host."""
    host: str
    pid: int
    created: datetime
    version: str = __version__
    path: str = ""
    """Where the state lives (file path or redacted URL); filled in by the backend."""

    @classmethod
    def new(cls, operation: str, *, clock: Clock | None = None) -> LockInfo:
        """Lock info for this process, timestamped by `clock`."""
        host = socket.gethostname()
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers with arbitrary uids)
            user = str(os.getuid())
        return cls(
            id=str(uuid.uuid4()),
            operation=operation,
            who=f"{user}@{host}",
            host=host,
            pid=os.getpid(),
            created=(clock or SystemClock()).now(),
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["created"] = self.created.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> LockInfo | None:
        """Parse stored lock info; None if it is empty or unreadable (a holder mid-write)."""
        try:
            data = json.loads(text)
            return cls(
                id=str(data["id"]),
                operation=str(data["operation"]),
                who=str(data["who"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                created=datetime.fromisoformat(str(data["created"])),
                version=str(data.get("version", "")),
                path=str(data.get("path", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        """One line naming the holder, for error messages."""
        return (
            f"`{self.operation}` (pid {self.pid} on {self.host}, {self.who}, since "
            f"{self.created.isoformat(timespec='seconds')}, lock id {self.id})"
        )


def claim(state: State, project_id: str | None, location: str) -> State:
    """`state` as the project `project_id` may use it: stamped with that id when it has none yet,
    unchanged when it is already the project's.

    Raises:
        StateError: the state belongs to another project (or to one, when this project sets no
            `project:`): planning against it would cancel and forget the other's jobs.
    """
    if state.project == project_id:
        return state
    if state.project is None:
        return state.model_copy(update={"project": project_id})
    mine = f"`{project_id}`" if project_id else "none (reconciler.yaml sets no `project:`)"
    raise StateError(
        f"state {location} belongs to project `{state.project}`; this project's id is {mine}",
        hint="point `state:` at this project's own state, or set `project:` in reconciler.yaml "
        "to the id the state was made with",
    )


def holder_alive_here(holder: LockInfo) -> bool:
    """Whether the lock's holder is a process still running on this host (zombies count as gone).

    `force-unlock` refuses such a holder unless forced: breaking the lock of a live apply lets two
    writers race, and the loser's changes to the world (jobs it created) would then be unrecorded.
    """
    if holder.host != socket.gethostname() or holder.pid <= 0:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:
        stat = Path(f"/proc/{holder.pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def refuse_live_holder(holder: LockInfo, location: str, *, force: bool) -> None:
    """Raise unless `force` when `holder` is alive on this host (see `holder_alive_here`).

    Raises:
        StateLockedError: naming the holder, with the way to force it.
    """
    if force or not holder_alive_here(holder):
        return
    raise StateLockedError(
        f"the lock on {location} is held by {holder.describe()}, which is still running "
        "on this host; not breaking it",
        hint=f"stop pid {holder.pid} first, or run `reconciler force-unlock --force {holder.id}` "
        "(its later state writes are then refused)",
    )


class LockHeldError(StateLockedError):
    """The lock is held by someone else; `holder` is their LockInfo when it could be read."""

    def __init__(self, location: str, holder: LockInfo | None, *, waited: float = 0.0) -> None:
        who = holder.describe() if holder else "another process (its lock info is unreadable)"
        waited_text = f" (waited {waited:g}s)" if waited > 0 else ""
        hint = (
            f"if that process is gone or stuck, run `reconciler force-unlock {holder.id}`"
            if holder
            else "retry later, or pass --lock-timeout to wait"
        )
        super().__init__(f"state {location} is locked by {who}{waited_text}", hint=hint)
        self.holder = holder


class StateReader(Protocol):
    """Refresher: the stored state."""

    def read(self) -> State:
        """The stored state, or a new empty State with a fresh lineage if none exists yet.

        Raises:
            StateError: unreachable, unreadable, corrupt, or from a newer format version.
        """
        ...


class StateWriter(Protocol):
    """Persister: replace the stored state."""

    def write(self, state: State, expected_serial: int) -> State:
        """Store `state` if the stored serial is still `expected_serial`.

        Returns the state as stored: serial `expected_serial + 1` if its content (everything
        but the serial) changed, else the stored state unchanged.

        Raises:
            StaleWriteError: the stored serial is not `expected_serial` (someone wrote since).
            StateError: the lineage differs from the stored one, or the write failed.
        """
        ...


class StateLocker(Protocol):
    """Locker: mutual exclusion between commands that write."""

    def lock(self, info: LockInfo, timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        """A context manager holding the lock; yields `info` as recorded (with `path`).

        Waits up to `timeout` seconds (backoff with jitter). The lock dies with the process.

        Raises:
            LockHeldError: (a StateLockedError) still held after `timeout`; names the holder.
        """
        ...

    def force_unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        """Break the lock held under `lock_id`; returns the broken lock's info.

        Raises:
            StateError: nothing is locked, or `lock_id` is not the holder's id.
            StateLockedError: the holder is alive on this host and `force` is false.
        """
        ...


class BlobStore(Protocol):
    """Small content-addressed blobs kept beside the state (e.g. per-key request digests)."""

    def put_blobs(self, blobs: Sequence[Blob]) -> None:
        """Store every blob of `blobs` (idempotently); all are durable when this returns.

        Apply stores the blobs a group commit's records refer to in one call just before the
        state write, so the backend syncs them together (one directory sync per kind, one
        statement) instead of once per resource.

        Raises:
            StateError: a blob's sha256 is not the digest of its data, or a kind is no plain name.
        """
        ...

    def put_blob(self, kind: str, sha256: str, data: bytes) -> None:
        """Store `data` under (kind, sha256); idempotent.

        Raises:
            StateError: `sha256` is not the digest of `data`, or `kind` is not a plain name.
        """
        ...

    def get_blob(self, kind: str, sha256: str) -> bytes | None:
        """The blob, or None if it was never stored."""
        ...


class BlobCollector(Protocol):
    """Garbage collection of the blob store."""

    def collect_garbage(self) -> Collected:
        """Delete every blob no record of the stored state refers to (`state.references`);
        the caller holds the state lock. Backends also collect on their own when a lock under
        which they wrote is released. A kill at any point leaves a state that reads.

        Raises:
            StateError: the state or the blob store could not be read, or a blob not deleted.
        """
        ...


class StateBackend(StateReader, StateWriter, StateLocker, BlobStore, BlobCollector, Protocol):
    """Everything a command needs from where the state lives."""

    @property
    def location(self) -> str:
        """Where the state lives, safe to print (a URL's password is redacted)."""
        ...

    def close(self) -> None:
        """Release connections; the backend must not be used afterwards."""
        ...


def detached(state: State) -> State:
    """A copy of `state` whose `resources` dict is its own.

    Backends cache the last state they read or wrote to make writes cheap; handing out the
    cached object would let a caller's in-place `resources[...] = ...` edit the cache too, and
    the next write would then look unchanged and be skipped. Records themselves are immutable.
    """
    return state.model_copy(update={"resources": dict(state.resources)})


def check_blob(kind: str, sha256: str, data: bytes | None = None) -> None:
    """Refuse blob keys that could escape a directory and content that does not match its hash."""
    import hashlib

    if not _BLOB_KIND.fullmatch(kind):
        raise StateError(
            f"invalid blob kind {kind!r}: expected lower-case letters, digits, - and _"
        )
    if not _SHA256.fullmatch(sha256):
        raise StateError(f"invalid blob address {sha256!r}: expected 64 lower-case hex digits")
    if data is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise StateError(f"blob {kind}/{sha256} does not match its content's sha256")


T = TypeVar("T")


def retry_lock(
    try_once: Callable[[], T],
    *,
    timeout: float,
    clock: Clock,
    sleep: Sleep,
    rng: random.Random,
    location: str,
    initial_delay: float = 0.05,
    max_delay: float = 2.0,
) -> T:
    """Call `try_once` until it stops raising LockHeldError or `timeout` seconds have passed.

    Waits grow exponentially with full jitter, so many waiters do not retry in lock-step; the
    last wait is cut short to end at the deadline.

    Raises:
        LockHeldError: still held at the deadline (names the last holder seen and the wait).
    """
    deadline = clock.monotonic() + max(0.0, timeout)
    delay = initial_delay
    while True:
        try:
            return try_once()
        except LockHeldError as exc:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                if timeout > 0:
                    raise LockHeldError(location, exc.holder, waited=timeout) from None
                raise
            sleep(min(remaining, rng.uniform(delay / 2, delay)))
            delay = min(max_delay, delay * 2)
