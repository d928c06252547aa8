"""Per-key request digests of a source: in memory (`HexDigests`) or spilled to scratch files
as a scan writes them (`SpilledDigests`, read back only if a consumer asks), and the one
digest over all of them (`keys_sha256`) that says whether any request changed.

Split from `manifests.jsonl`, whose scan produces them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import weakref
from collections.abc import Iterator, Mapping

import msgspec

from reconciler.manifests.requests import DIGEST_BYTES

SPILL_FRAME = struct.Struct("<I")
"""Length prefix of each block of (key, digest) pairs in a spill file."""


class HexDigests(Mapping[str, str]):
    """key -> 16-hex-char request digest, stored as 8 raw bytes (half the memory of hex text)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, bytes]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> str:
        return self._raw[key].hex()

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def raw(self) -> Mapping[str, bytes]:
        return self._raw


class SpilledDigests(Mapping[str, str]):
    """key -> 16-hex-char request digest, kept in temporary files written during the scan.

    Length is known without reading them; the first lookup or iteration reads them into a dict
    (raw 8-byte digests) once. So a planner that never compares this source's keys (the source is
    unchanged, or nothing was recorded before) never holds them in memory. The files belong to
    this object and are removed when it is collected."""

    __slots__ = ("__weakref__", "_count", "_paths", "_raw")

    def __init__(self, paths: list[str], count: int) -> None:
        self._paths = tuple(paths)
        self._count = count
        self._raw: dict[str, bytes] | None = None
        weakref.finalize(self, _remove_files, self._paths)

    def _load(self) -> dict[str, bytes]:
        if self._raw is None:
            raw: dict[str, bytes] = {}
            for path in self._paths:
                with open(path, "rb") as handle:
                    while header := handle.read(SPILL_FRAME.size):
                        (length,) = SPILL_FRAME.unpack(header)
                        keys, digests = msgspec.msgpack.decode(handle.read(length))
                        raw.update(zip(keys, digest_chunks(digests), strict=True))
            self._raw = raw
        return self._raw

    def __getitem__(self, key: str) -> str:
        return self._load()[key].hex()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return self._count if self._raw is None else len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._load()


def digest_chunks(digests: bytes) -> Iterator[bytes]:
    """Packed fixed-size digests, one by one."""
    return (digests[i : i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES))


def _remove_files(paths: tuple[str, ...]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


def file_keys_sha256(count: int, pair_sum: int) -> str:
    """keys_sha256 of a JSONL input: from the count of keys and the sum (mod 2**64) of the first
    8 bytes of sha256(key, NUL, request digest) over every key. A sum does not depend on line
    order and needs no sorted key list, so it is computed in the streamed pass; two different
    (key, digest) sets collide with probability about 2**-64."""
    return hashlib.sha256(b"%d:%d" % (count, pair_sum)).hexdigest()


def keys_sha256(digests: Mapping[str, bytes], ordered: list[str] | None = None) -> str:
    """sha256 over the (key, digest) pairs in key order: JSON of the sorted keys, then the digests.

    Two C-level joins instead of one hash update per pair keep this cheap for millions of keys.
    `ordered`, if given, is the keys already sorted (workers sort their halves in parallel)."""
    ordered = sorted(digests) if ordered is None else ordered
    hasher = hashlib.sha256(msgspec.json.encode(ordered))
    hasher.update(b"".join(map(digests.__getitem__, ordered)))
    return hasher.hexdigest()
