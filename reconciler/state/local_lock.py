"""The local state lock: an OS-level `flock` on `<state>.lock`, which the kernel drops when the
holder dies (so a crashed run never blocks the next); the file's content names the holder."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from reconciler.errors import StateError
from reconciler.state.backend import LockHeldError, LockInfo, refuse_live_holder
from reconciler.state.local_files import read_fd


def take(lock_path: Path, info: LockInfo, *, location: str) -> int:
    """Take the lock without waiting and write `info` into the lock file.

    Returns:
        The descriptor that holds the lock: `release` it.

    Raises:
        LockHeldError: someone holds it (named when the file says who).
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockInfo.from_json(read_fd(fd))
            os.close(fd)
            raise LockHeldError(location, holder) from None
        # force-unlock unlinks the file; if that happened between our open and flock we
        # hold a lock on an orphan inode that nobody else will see, so start over.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, info.to_json().encode(), 0)
    return fd


def still_holds(lock_path: Path, fd: int) -> bool:
    """Whether the lock `take` returned as `fd` is still this file's: `force_unlock` unlinks
    the file, and the next holder locks a new one."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(lock_path))
    except OSError:
        return False


def release(fd: int) -> None:
    """Release the lock `take` returned."""
    # Truncate rather than unlink: unlinking would race with a waiter that has the file
    # open and is about to flock it.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing drops the flock


def force_unlock(lock_path: Path, lock_id: str, *, location: str, force: bool) -> LockInfo:
    """Break the lock held under `lock_id` (see `StateLocker.force_unlock`); returns its holder.

    Raises:
        StateError: the state is not locked, or under another id.
        StateLockedError: the holder still runs on this host and `force` is not given.
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StateError(f"state {location} is not locked") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            raise StateError(f"state {location} is not locked")
        holder = LockInfo.from_json(read_fd(fd))
    finally:
        os.close(fd)
    if holder is None or holder.id != lock_id:
        held_by = f"lock id {holder.id}" if holder else "a holder whose lock info is unreadable"
        raise StateError(
            f"lock id {lock_id} does not match the lock on {location} (held under {held_by})"
        )
    refuse_live_holder(holder, location, force=force)
    # The stuck holder keeps its flock on the unlinked inode; everyone else now opens a
    # fresh file. Its later writes still meet the serial check.
    os.unlink(lock_path)
    return holder
