"""Parsed manifests by content hash, kept between runs in `.reconciler/cache/`; the sealing
(`read_sealed`, `write_sealed`) that this cache and the input scan cache (`scan_cache`) share.

A manifest unchanged since the last run is not parsed again (YAML parsing is most of a load's
cost per manifest). Only the fast parser's documents of clean files are kept, keyed by the
sha256 of the file's text; a file with any problem is parsed every time, so diagnostics always
come from the parser.

The cache is trusted only if this user wrote it on this machine: the file is authenticated with
a key kept outside the repository (under the user's cache directory). A cache that arrived with
the repository (committed by a pull request, say) fails that check and is ignored, so what is
applied is always what the manifests say. A missing, corrupt, foreign or other-version cache is
ignored; writing it is best effort (a read-only checkout simply runs without one).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from stat import S_ISREG

import msgspec

from reconciler.manifests.scratch import remove_left_by_dead
from reconciler.yamlsafe import CACHE_FORMAT

CACHE_FILE = Path(".reconciler") / "cache" / "manifests.msgpack"
KEY_BYTES = 32


def _key_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reconciler" / "parse-cache.key"


def user_key() -> bytes | None:
    """This user's cache key, created on first use; None when it cannot be read or made."""
    path = _key_file()
    with contextlib.suppress(OSError):
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            return key
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_bytes(KEY_BYTES)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(fresh)
        return fresh
    except FileExistsError:  # another run made it meanwhile
        with contextlib.suppress(OSError):
            key = path.read_bytes()
            return key if len(key) == KEY_BYTES else None
        return None
    except OSError:
        return None


def stamp() -> str:
    """Entries of another reconciler (or cache format) are not read."""
    from reconciler import __version__

    return f"{__version__}/{CACHE_FORMAT}"


class ParseCache:
    """One run's use of the project's parse cache (`yamlsafe.DocumentCache`): read on first
    lookup, written once by `save` when the run parsed something new."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / CACHE_FILE
        self._key: bytes | None = None
        self._stored: dict[str, bytes] | None = None
        self._used: dict[str, bytes] = {}
        self._added = False

    def _entries(self) -> dict[str, bytes]:
        if self._stored is None:
            self._key = user_key()
            self._stored = self._read() if self._key is not None else {}
        return self._stored

    def _read(self) -> dict[str, bytes]:
        assert self._key is not None
        payload = read_sealed(self.path, self._key)
        if payload is None:
            return {}
        try:
            version, entries = msgspec.msgpack.decode(payload, type=tuple[str, dict[str, bytes]])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return {}
        return entries if version == stamp() else {}

    def get(self, digest: str) -> bytes | None:
        packed = self._entries().get(digest)
        if packed is not None:
            self._used[digest] = packed
        return packed

    def put(self, digest: str, packed: bytes) -> None:
        self._used[digest] = packed
        self._added = True

    def save(self) -> None:
        """Write the entries this run used or added, plus as many older ones (other branches'
        versions of the manifests), when the run added any. Never raises."""
        if not self._added or self._key is None:
            return
        entries = dict(self._used)
        budget = 2 * len(self._used)
        for digest, packed in self._entries().items():
            if len(entries) >= budget:
                break
            entries.setdefault(digest, packed)
        write_sealed(self.path, self.root, self._key, msgspec.msgpack.encode((stamp(), entries)))


MAX_SEALED_BYTES = 1 << 30
"""The largest cache file read: far above what a project's manifests or small inputs need."""


def read_sealed(path: Path, key: bytes) -> bytes | None:
    """The payload of a file `write_sealed` wrote with `key`; None when it is missing,
    truncated, or sealed with another key (a cache that came with a checkout).

    Only a regular file of at most `MAX_SEALED_BYTES` is read, and never through a symlink: a
    checkout may plant `/dev/zero`, a FIFO or a huge file at the cache's name, which would
    otherwise be read until memory runs out (or forever)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            stat = os.fstat(handle.fileno())
            if not S_ISREG(stat.st_mode) or stat.st_size > MAX_SEALED_BYTES:
                return None
            raw = handle.read(MAX_SEALED_BYTES + 1)
    except OSError:
        return None
    size = hashlib.sha256().digest_size
    tag, payload = raw[:size], raw[size:]
    if len(tag) != size or not hmac.compare_digest(tag, hmac.digest(key, payload, "sha256")):
        return None
    return payload


def open_temporary(path: Path, root: Path) -> tuple[int, Path] | None:
    """A new file beside `path` (a descriptor and its name) to be renamed onto it, or None
    when it cannot be made safely.

    The folder comes with the checkout and may hold symlinks a pull request planted: nothing is
    made unless the folder is really inside the project, and the file is a new one (a name
    chosen here, O_EXCL, no symlink followed). It is named after this process, and those a
    killed run left (named after a process that is gone) are removed here."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _inside(path.parent, root):
            return None
        remove_left_by_dead(path.parent, f".{path.name}.", ".tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(temporary, flags, 0o600), temporary
    except OSError:
        return None


def finish_sealed(
    descriptor: int, temporary: Path, path: Path, key: bytes, payload: bytes | None
) -> None:
    """Seal `payload` into the file `open_temporary` made and rename it onto `path`; with no
    payload, remove it. Never raises: a cache is best effort."""
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if payload is not None:
                handle.write(hmac.digest(key, payload, "sha256") + payload)
        if payload is not None:
            os.replace(temporary, path)
            return
    except OSError:
        pass
    with contextlib.suppress(OSError):
        temporary.unlink()


def write_sealed(path: Path, root: Path, key: bytes, payload: bytes) -> None:
    """Write `payload` to `path` under `root`, sealed with `key` (best effort, never raises)."""
    opened = open_temporary(path, root)
    if opened is not None:
        finish_sealed(*opened, path, key, payload)


def _inside(directory: Path, root: Path) -> bool:
    """Whether `directory`, symlinks resolved, is `root/.reconciler/…` itself (no link out)."""
    resolved = directory.resolve()
    expected = root.resolve() / directory.relative_to(root)
    return resolved == expected
