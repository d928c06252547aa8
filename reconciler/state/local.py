"""The local backend: the state as a JSON file (default `state/reconciler.state.json`).

Writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory) and
keep the previous version as `<file>.backup`, so a kill at any instant leaves a readable state.
While this backend holds the state lock, a write appends its change to `<file>.journal` instead
(synced; see `state.journal`), and releasing the lock folds the journal into the file: a write
in a long apply costs its change, not the whole document.
The lock is an OS-level `flock` on `<file>.lock` (`state.local_lock`); blobs live in `blobs/`
beside the file (`state.local_files`), collected by `state.local_collect`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.clock import Clock
from reconciler.errors import StaleWriteError, StateError
from reconciler.state import codec, journal, local_lock
from reconciler.state.backend import (
    Blob,
    LineageFactory,
    LockInfo,
    Sleep,
    StateBackend,
    check_blob,
    claim,
    detached,
    retry_lock,
)
from reconciler.state.document import FORMAT_VERSION, State
from reconciler.state.local_collect import collect, other_states
from reconciler.state.local_files import read_blobs, write_blobs
from reconciler.state.migrations import StateFormatError
from reconciler.state.references import Collected
from reconciler.state.stored_form import DETAILS_BLOB

_log = logging.getLogger(__name__)

_StatKey = tuple[int, int, int, int]
_WRITE_BUFFER = 1 << 20
_JOURNAL_MIN = 1 << 20
"""Bytes a journal may always grow to before it is folded; beyond, up to the document's size
(so folding costs at most as much again as the appends did)."""


_REREADS = 3
"""Reads of a state whose files changed under a failed read, before its error stands."""

_Keys = tuple[_StatKey, _StatKey | None]
"""The identities of the document file and of its journal (None: no journal)."""


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class LocalBackend:
    """State in a local JSON file, with a backup, an flock lock and a blob directory beside it."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock,
        lineage_factory: LineageFactory,
        sleep: Sleep,
        rng: random.Random,
        project_id: str | None = None,
    ) -> None:
        self.path = path
        self._project_id = project_id
        self.backup_path = path.with_name(path.name + ".backup")
        self.lock_path = path.with_name(path.name + ".lock")
        self.journal_path = path.with_name(path.name + journal.SUFFIX)
        self.blobs_dir = path.parent / "blobs"
        self._clock = clock
        self._lineage_factory = lineage_factory
        self._sleep = sleep
        self._rng = rng
        # The last document read or written, keyed by the file's identity: apply writes after
        # every step, and re-reading + validating 1,000 records each time would dominate.
        self._cache: tuple[_Keys, State] | None = None
        self._journaling = False
        """True while this backend holds the state lock: writes then go to the journal."""
        self._wrote_locked = False
        """A write under the current lock changed the state: releasing it collects garbage."""
        self._journal_valid = 0
        """Length of the journal's intact part as last read or written (the next entry's offset)."""
        self._document_bytes = 0
        self._document_current = False
        """Whether the document file is at FORMAT_VERSION (only then may the journal extend it)."""
        self._read_key: _Keys | None = None
        """The identities of the files the last read began with."""

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._cache = None

    # -- read ---------------------------------------------------------------------------------

    def read(self) -> State:
        stored = self._stored()
        state = detached(stored) if stored is not None else State(lineage=self._lineage_factory())
        return claim(state, self._project_id, str(self.path))

    def _stored(self) -> State | None:
        """The state on disk with its journal replayed (None if there is none yet), from the
        cache when neither file changed.

        A blob found missing while a writer replaced the document is read again: the
        collection after a locked command deletes the blobs only its older versions named."""
        for _ in range(_REREADS):
            try:
                return self._stored_once()
            except StateFormatError:
                if self._read_key == self._current_key():
                    raise
        return self._stored_once()

    def _current_key(self) -> _Keys | None:
        try:
            return self._keys()
        except FileNotFoundError:
            return None

    def _stored_once(self) -> State | None:
        self._read_key = None
        try:
            with open(self.path, "rb") as f:
                key = (_stat_key(os.fstat(f.fileno())), self._journal_key())
                self._read_key = key
                if self._cache is not None and self._cache[0] == key:
                    return self._cache[1]
                data = f.read()
            entries = self.journal_path.read_bytes() if key[1] is not None else b""
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {exc.strerror}") from None
        source = f"state file {self.path}"
        try:
            raw = codec.parse(data, source=source)
            self._document_current = raw.get("format_version") == FORMAT_VERSION
            self._journal_valid = journal.replay(raw, entries, source=source)
            state = codec.decode_raw(raw, source=source, blobs=self._details)
        except StateFormatError as exc:
            hint = exc.hint or (
                f"the previous version is in {self.backup_path}; inspect it and copy it over "
                f"{self.path} to restore"
                if self.backup_path.exists()
                else "no backup exists; restore the file from version control"
            )
            raise StateFormatError(exc.message, hint=hint) from None
        self._document_bytes = len(data)
        self._cache = (key, state)
        return state

    def _details(self, addresses: Collection[str]) -> dict[str, bytes]:
        """The details blobs of `addresses` that exist (a `BlobSource` for decoding)."""
        return read_blobs(self.blobs_dir / DETAILS_BLOB, addresses)

    def _journal_key(self) -> _StatKey | None:
        try:
            return _stat_key(os.stat(self.journal_path))
        except FileNotFoundError:
            return None

    def _keys(self) -> _Keys:
        return (_stat_key(os.stat(self.path)), self._journal_key())

    # -- write --------------------------------------------------------------------------------

    def write(self, state: State, expected_serial: int) -> State:
        state = claim(state, self._project_id, str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The state lock keeps writers apart; this short directory lock also makes the serial
        # check and the rename one step for callers that write without it.
        with self._dir_lock() as dir_fd:
            stored = self._stored()
            stored_serial = stored.serial if stored is not None else 0
            if expected_serial != stored_serial:
                raise StaleWriteError(
                    f"state {self.path} is at serial {stored_serial}, but this write was "
                    f"based on serial {expected_serial}: someone else wrote it meanwhile",
                    hint="re-run the command so it starts from the current state",
                )
            if stored is not None and stored.lineage != state.lineage:
                raise StateError(
                    f"refusing to write lineage {state.lineage} over state {self.path} "
                    f"of lineage {stored.lineage}"
                )
            if stored is not None and stored.same_content(state):
                return detached(stored)
            new = detached(state.model_copy(update={"serial": stored_serial + 1}))
            entry, blobs = (
                journal.encode_entry(stored, new)
                if stored is not None and self._journaling and self._document_current
                else (b"", [])
            )
            if entry and self._journal_valid + len(entry) <= max(
                _JOURNAL_MIN, self._document_bytes
            ):
                self.put_blobs(blobs)  # durable before the line that refers to them
                self._append(entry, dir_fd)
            else:
                self._rewrite(new, dir_fd, stored)
            self._cache = (self._keys(), new)
            self._wrote_locked |= self._journaling
            return detached(new)

    def _rewrite(self, state: State, dir_fd: int, stored: State | None) -> None:
        """Replace the document `stored` with `state` and drop the journal it now contains.

        The blobs `stored` refers to (in the current form) are there (stored before it, and
        never collected while it names them); only the others are stored. Remembering blobs once seen instead would
        trust one a collection has deleted since, when a record comes back to it."""
        parts = codec.encode_parts(state)
        blobs = codec.state_blobs(state)
        # An older form spells its details out: its records' blobs were never stored.
        current = stored is not None and self._document_current
        there = codec.state_blobs(stored) if stored is not None and current else {}
        self.put_blobs([blob for address, blob in blobs.items() if address not in there])
        self._replace(parts, dir_fd)
        self._document_bytes = sum(map(len, parts))
        self._document_current = True
        # A kill before this unlink leaves entries the document already holds: replay skips
        # them by serial.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.journal_path)
            os.fsync(dir_fd)
        self._journal_valid = 0

    def _append(self, entry: bytes, dir_fd: int) -> None:
        """Add `entry` after the journal's intact part (cutting off a torn tail), synced."""
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            created = os.fstat(fd).st_size == 0 and self._journal_valid == 0
            os.ftruncate(fd, self._journal_valid)
            view = memoryview(entry)
            offset = self._journal_valid
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if created:
            os.fsync(dir_fd)  # the journal's name must survive a power cut as its lines do
        self._journal_valid += len(entry)

    def _fold_journal(self) -> None:
        """Rewrite the document with the journal's changes and remove the journal (on releasing
        the lock), so the file alone is the state again. A failure leaves the journal, which
        every reader replays; the next locked command folds it."""
        if not self.journal_path.exists():
            return
        with contextlib.suppress(OSError, StateError), self._dir_lock() as dir_fd:
            stored = self._stored()
            if stored is None:
                os.unlink(self.journal_path)  # no document to extend: nothing to keep
                return
            self._rewrite(stored, dir_fd, stored)
            self._cache = (self._keys(), stored)

    @contextlib.contextmanager
    def _dir_lock(self) -> Iterator[int]:
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def _replace(self, data: Sequence[bytes], dir_fd: int) -> None:
        tmp = self._write_temp(self.path, data)
        try:
            self._on_staged()
            if self.path.exists():
                self._backup_current()
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # Without this the renames may not survive a power cut even though the data did.
        os.fsync(dir_fd)

    def _on_staged(self) -> None:
        """Called when the new document is durable in its temp file but not yet published.

        A no-op; the torn-write tests kill the process here to prove the old state survives.
        """

    def _backup_current(self) -> None:
        # A hard link makes the backup free; the temp name + rename keeps `.backup` whole.
        tmp_backup = self.path.with_name(f".{self.path.name}.backup.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_backup)
        try:
            os.link(self.path, tmp_backup)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copy2(self.path, tmp_backup)  # filesystems without hard links
        os.replace(tmp_backup, self.backup_path)

    @staticmethod
    def _write_temp(target: Path, data: Sequence[bytes], *, sync: bool = True) -> str:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            # The parts are mostly cached record lines: a large buffer writes them with few
            # system calls and no joined copy of the whole document.
            with os.fdopen(fd, "wb", buffering=_WRITE_BUFFER) as f:
                f.writelines(data)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the state file is meant to be shared
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    # -- lock ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float = 0.0) -> Iterator[LockInfo]:
        info = replace(info, path=self.location)
        held = retry_lock(
            lambda: self._try_lock(info),
            timeout=timeout,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
            location=self.location,
        )
        self._journaling = True
        self._wrote_locked = False
        try:
            yield info
        finally:
            self._journaling = False
            # Broken by force-unlock, the lock is another command's now: folding or collecting
            # would act under its feet (a blob it stored for its next write is garbage yet).
            if local_lock.still_holds(self.lock_path, held):
                self._fold_journal()
                if self._wrote_locked:
                    self._collect_quietly()
            local_lock.release(held)

    def _collect_quietly(self) -> None:
        """Collect garbage on releasing a lock under which this backend wrote: the command's
        work is stored already, so a failure here is only logged (`state gc` reports it)."""
        try:
            collected = self.collect_garbage()
        except (OSError, StateError) as exc:
            _log.debug("blob collection of %s failed: %s", self.path, exc)
            return
        _log.debug("blob collection of %s: %s", self.path, collected)

    def _try_lock(self, info: LockInfo) -> int:
        fd = local_lock.take(self.lock_path, info, location=self.location)
        self._remove_stale_temps()
        return fd

    def _remove_stale_temps(self) -> None:
        """Delete temp files a killed writer left; only a lock holder writes, so none is live."""
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def force_unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        return local_lock.force_unlock(self.lock_path, lock_id, location=self.location, force=force)

    # -- blobs --------------------------------------------------------------------------------

    def put_blob(self, kind: str, sha256: str, data: bytes) -> None:
        self.put_blobs((Blob(kind, sha256, data),))

    def put_blobs(self, blobs: Sequence[Blob]) -> None:
        for blob in blobs:
            check_blob(blob.kind, blob.sha256, blob.data)
        write_blobs(self.blobs_dir, blobs)

    def collect_garbage(self) -> Collected:
        """Delete the blobs neither the state (its journal replayed) nor its backup refers to
        (see `state.local_collect`); nothing beside another state's files, since `blobs/`
        belongs to every state file of its directory."""
        ours = {self.path.name, self.lock_path.name, self.journal_path.name, self.backup_path.name}
        others = other_states(self.path, ours)
        if others:
            return Collected(
                skipped=f"{self.blobs_dir} also holds the blobs of {others[0]}: a collection "
                "for one state would delete the other's"
            )
        with self._dir_lock():
            stored = self._stored()
            if stored is None:
                return Collected(skipped=f"no state file {self.path} refers to any blob yet")
            return collect(
                self.blobs_dir,
                stored,
                (self.path, self.journal_path, self.backup_path),
                details=self._details,
                on_deleted=self._on_collecting,
            )

    def _on_collecting(self) -> None:
        """Called after each blob a collection deletes.

        A no-op; the kill tests stop the process here to prove a collection cut short leaves a
        state that reads, and that the next one finishes it.
        """

    def get_blob(self, kind: str, sha256: str) -> bytes | None:
        check_blob(kind, sha256)
        try:
            return (self.blobs_dir / kind / sha256).read_bytes()
        except FileNotFoundError:
            return None


if TYPE_CHECKING:
    # Fails type checking if LocalBackend stops satisfying the whole protocol.
    def _satisfies_protocol(backend: LocalBackend) -> StateBackend:
        return backend
