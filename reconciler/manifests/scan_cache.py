"""Clean scans of small JSONL inputs, kept between runs by each file's stat, as git's index is.

A no-op plan of a large project checks every input again although none changed; the check of a
small input (read, hash, parse every line, digest every request) is most of its cost per
manifest after the YAML. An input whose file has the same device, inode, size, mtime and ctime
as when it was scanned is not read again: its digest comes from `.reconciler/cache/inputs.msgpack`.

Never stale: ctime cannot be set back (`os.utime` sets mtime only, and changes ctime), and an
entry is kept only when the file's mtime and ctime are older than the file system's clock at
the time the file was read (git's "racily clean" rule): a write after the read then changes
ctime even on a file system with coarse timestamps. That clock is read from the file system
itself (the cache's new file, made before the first read), never from this machine's clock;
an input on another file system (whose clock was not read) is not kept.

Kept only: scans without any diagnostic (warnings included, so every message comes from a
scan), without local media (their files are checked and hashed on every run), of files small
enough to be scanned inline (their key digests are in memory). The file is sealed as the
parse cache is (`parse_cache.read_sealed`): one from a checkout, corrupt, or of another version
is ignored, and it is never written through a symlink a checkout planted.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from reconciler.manifests.desired import SourceDigest
from reconciler.manifests.jsonl import INLINE_MAX_BYTES, JsonlScan
from reconciler.manifests.key_digests import HexDigests
from reconciler.manifests.model import Task
from reconciler.manifests.parse_cache import (
    finish_sealed,
    open_temporary,
    read_sealed,
    stamp,
    user_key,
)

CACHE_FILE = Path(".reconciler") / "cache" / "inputs.msgpack"

StatKey = tuple[int, int, int, int, int]
"""(device, inode, size, mtime_ns, ctime_ns) of a file when it was scanned."""


class _Entry(msgspec.Struct, array_like=True, frozen=True):
    stat: StatKey
    sha256: str
    size: int
    request_count: int
    keys_sha256: str
    max_output_tokens: int | None
    key_digests: dict[str, bytes]
    """Raw 8-byte digests by key; empty for a scan without digests (`validate`)."""


_Stored = tuple[str, dict[str, _Entry]]


def stat_key(stat: os.stat_result) -> StatKey:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class ScanCache:
    """One run's use of the project's input scan cache: read on first lookup, written once by
    `save` when the run scanned something it may keep."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / CACHE_FILE
        self._key: bytes | None = None
        self._stored: dict[str, _Entry] | None = None
        self._used: dict[str, _Entry] = {}
        self._added = False
        self._temporary: tuple[int, Path] | None = None
        self._clock_ns: int | None = None
        """The file system's time before this run's first read of an input (the new cache
        file's mtime); None until then, or when no cache file can be made (nothing is kept)."""
        self._clock_device: int | None = None
        """The device of that file system: only inputs on it are kept, as only its clock was
        read (a mount inside the project, say NFS, stamps files with its server's clock)."""

    def _entries(self) -> dict[str, _Entry]:
        if self._stored is None:
            self._key = user_key()
            self._stored = self._read() if self._key is not None else {}
        return self._stored

    def _read(self) -> dict[str, _Entry]:
        assert self._key is not None
        payload = read_sealed(self.path, self._key)
        if payload is None:
            return {}
        try:
            version, entries = msgspec.msgpack.decode(payload, type=_Stored)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return {}
        return entries if version == _version() else {}

    def lookup(self, path: Path, task: Task, digests: bool) -> JsonlScan | StatKey | None:
        """The kept scan of `path` when the file is as it was then; else its stat now (to
        `keep` the scan about to be made), or None when it cannot be stat'ed."""
        try:
            now = stat_key(os.stat(path))
        except OSError:
            return None
        name = _name(path, task, digests)
        entry = self._entries().get(name)
        if entry is not None and entry.stat == now:
            self._used[name] = entry
            return _scan(entry, digests)
        self._start()  # the clock is read before the file is
        return now

    def keep(self, path: Path, task: Task, digests: bool, stat: StatKey, scan: JsonlScan) -> None:
        """Keep `scan` of `path`, made after `lookup` answered `stat`, if it may be kept."""
        clock = self._clock_ns
        digest = scan.digest
        kept_digests = digest.key_digests
        if (
            clock is None
            or scan.diagnostics
            or scan.media
            or stat[2] > INLINE_MAX_BYTES
            or stat[2] != digest.bytes
            or stat[0] != self._clock_device
            or max(stat[3], stat[4]) >= clock  # racily clean: re-read next time
            or (digests and not isinstance(kept_digests, HexDigests))
        ):
            return
        raw: Mapping[str, bytes] = (
            kept_digests.raw() if isinstance(kept_digests, HexDigests) else {}
        )
        self._used[_name(path, task, digests)] = _Entry(
            stat,
            digest.sha256,
            digest.bytes,
            digest.request_count,
            digest.keys_sha256,
            digest.max_output_tokens,
            dict(raw),
        )
        self._added = True

    def _start(self) -> None:
        self._entries()
        if self._temporary is not None or self._key is None or _rules() is None:
            return
        self._temporary = open_temporary(self.path, self.root)
        if self._temporary is not None:
            try:
                made = os.fstat(self._temporary[0])
            except OSError:
                return
            self._clock_ns, self._clock_device = made.st_mtime_ns, made.st_dev

    def save(self) -> None:
        """Write the entries this run used or kept, plus as many older ones (other branches'
        inputs), when it kept any; else leave the file as it is. Never raises."""
        if self._temporary is None or self._key is None:
            return
        payload: bytes | None = None
        if self._added:
            entries = dict(self._used)
            budget = 2 * len(self._used)
            for name, entry in self._entries().items():
                if len(entries) >= budget:
                    break
                entries.setdefault(name, entry)
            payload = msgspec.msgpack.encode((_version(), entries))
        descriptor, temporary = self._temporary
        self._temporary = None
        finish_sealed(descriptor, temporary, self.path, self._key, payload)


def _version() -> str:
    """Entries of another reconciler, or of other scanning code, are not read."""
    return f"{stamp()}/{_rules()}"


@functools.cache
def _rules() -> str | None:
    """A digest of the code that decides what a scan finds: a change to any rule of a JSONL
    line (in a working tree, without a new version) makes every kept scan another version's.
    None when that code cannot be read (nothing is then kept)."""
    from reconciler.manifests import (
        _sdk_fields,
        fast_lines,
        jsonl,
        jsonl_range,
        key_digests,
        requests,
    )

    hasher = hashlib.sha256()
    for module in (_sdk_fields, fast_lines, jsonl, jsonl_range, key_digests, requests):
        try:
            hasher.update(Path(module.__file__ or "").read_bytes())
        except OSError:
            return None
    return hasher.hexdigest()[:16]


def _name(path: Path, task: Task, digests: bool) -> str:
    return f"{task.value}:{'d' if digests else '-'}:{path}"


def _scan(entry: _Entry, digests: bool) -> JsonlScan:
    return JsonlScan(
        SourceDigest(
            sha256=entry.sha256,
            bytes=entry.size,
            request_count=entry.request_count,
            keys_sha256=entry.keys_sha256,
            key_digests=HexDigests(dict(entry.key_digests)) if digests else {},
            max_output_tokens=entry.max_output_tokens,
        ),
        (),
        (),
    )
