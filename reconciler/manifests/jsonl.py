"""Streaming JSONL input checks: one pass that hashes, parses, shape-checks and digests every line.

A multi-GB input never sits in memory: the file is read in large binary blocks and split into
lines, each decoded by a typed msgspec decoder that checks the request's shape in C; only lines
that fail (or name local media) are decoded a second time, as plain values, to explain the
problem. That per-line check of one byte range lives in `jsonl_range`; this module splits the
file, runs the ranges, and joins what they found.

Memory stays flat whatever the input's size. Key uniqueness keeps 8 bytes per key: the key's
(per-process) hash in one of 16 arrays, checked with a set per array at the end; only when a
hash repeats is the file read again to find the keys and both lines (which also rules out hash
collisions). The per-key digests the planner needs are written to a temporary file block by
block, and read back into a dict only if a consumer asks for them (`SpilledDigests`).

Small files (the common case: a few requests per manifest, thousands of manifests) are read
whole, hashed and checked inline, their digests kept in memory: no thread, no scratch file, so a
project's fixed cost per input stays small.

Large files are split at a line boundary and the second half is checked in a forked worker while
this process checks the first half and a thread hashes the whole file: hashing releases the GIL,
and decoding is the cost (DESIGN §9), so two cores bring a 1 GiB check close to one plain read.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from array import array
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from reconciler.cpu import next_line_start, second_process_pays
from reconciler.errors import Diagnostic, SourceLocation
from reconciler.manifests.desired import MediaRef, SourceDigest
from reconciler.manifests.jsonl_range import (
    BLOCK_BYTES,
    BUCKETS,
    MAX_REPORTED,
    RangeScan,
    scan_range,
    scan_range_packed,
)
from reconciler.manifests.key_digests import (
    HexDigests,
    SpilledDigests,
    file_keys_sha256,
    keys_sha256,
)
from reconciler.manifests.model import Task
from reconciler.manifests.paths import resolve_media
from reconciler.manifests.requests import DIGEST_BYTES
from reconciler.manifests.scratch import scratch_dir

PARALLEL_MIN_BYTES = 64 << 20
"""Below this, starting a worker costs more than it saves."""
INLINE_MAX_BYTES = 1 << 20
"""Up to this size a file is hashed and checked inline with its digests in memory: a thread and a
scratch file cost more than the whole check of a small input (~2 ms each, per manifest)."""


@dataclass(frozen=True, slots=True)
class JsonlScan:
    """The result of checking one JSONL input."""

    digest: SourceDigest
    diagnostics: tuple[Diagnostic, ...]
    media: tuple[MediaRef, ...]
    """Local media files named by requests, checked and hashed, sorted by path."""

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def _hash_file(path: str, result: list[Any]) -> None:
    hasher = hashlib.sha256()
    size = 0
    buffer = bytearray(BLOCK_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            hasher.update(view[:count])
            size += count
    result.extend((hasher.hexdigest(), size))


def _workers(size: int, requested: int | None, digests: bool) -> int:
    """How many processes check the file. Without digests one process keeps up with a plain read
    (the typed decoder is faster than a generic one, and hashing runs in a thread), so a second
    only pays for itself when digests are computed, the file is large, and a core is idle
    (`cpu.second_process_pays`)."""
    if requested is not None:
        return max(1, min(requested, 2))
    if not digests or size < PARALLEL_MIN_BYTES:
        return 1
    return 2 if second_process_pays() else 1


def scan_jsonl(
    path: Path,
    task: Task,
    project_root: Path,
    *,
    display: str | None = None,
    workers: int | None = None,
    digests: bool = True,
) -> JsonlScan:
    """Check a JSONL batch input and digest it in one streamed pass.

    Every line must be `{"key": <unique non-empty string>, "request": {...}}` with `request` a
    GenerateContentRequest (task generate) or EmbedContentRequest (task embed), camelCase or
    snake_case. Local media named by `fileData.path` must exist inside `project_root`.

    Args:
        path: the input file.
        task: decides the request schema.
        project_root: media paths are relative to it and confined to it.
        display: how diagnostics name the file (default: `path` relative to the root).
        workers: 1 to stay in this process, 2 to check half the file in a forked worker;
            default: decided by `_workers` (size, digests, idle cores).
        digests: compute per-key request digests and keys_sha256 (the planner needs them;
            `validate` does not, and skipping them halves the per-line cost). Without them
            `key_digests` is empty and `keys_sha256` is "".

    Returns:
        The digest (sha256 of the bytes, request count, per-key digests, keys_sha256), every
        problem as a diagnostic naming file, line and column, and the checked media.
    """
    shown = display or _relative(path, project_root)
    diagnostics: list[Diagnostic] = []
    try:
        size = path.stat().st_size
    except OSError as exc:
        message = f"input file `{shown}` cannot be read: {exc.strerror or exc}"
        return JsonlScan(_empty_digest(), (Diagnostic(message, SourceLocation(shown)),), ())
    small = size <= INLINE_MAX_BYTES and workers in (None, 1)
    if small:
        sha256, total, partials = _scan_small(path, size, task, digests)
    else:
        sha256, total, partials = _scan_large(path, size, task, digests, project_root, workers)
    media_uses, hidden = _merge(partials, diagnostics, shown)
    count = sum(part.keyed for part in partials)
    key_digests: Mapping[str, str] = {}
    if digests and small:
        key_digests = HexDigests(partials[0].kept)
    elif digests:
        # Owned from here: the files go when the mapping does, or now if no mapping is made.
        key_digests = SpilledDigests([part.spill for part in partials if part.spill], count)
    repeated = _repeated_hashes(partials)
    if repeated:
        diagnostics.extend(_duplicate_diagnostics(path, shown, repeated))
    if not count and not diagnostics:
        diagnostics.append(
            Diagnostic(f"input file `{shown}` holds no requests", SourceLocation(shown))
        )
    media = _resolve_media(project_root, media_uses, shown, diagnostics)
    digest = SourceDigest(
        sha256=sha256,
        bytes=total,
        request_count=count,
        keys_sha256=file_keys_sha256(count, sum(p.pair_sum for p in partials) % (1 << 64))
        if digests
        else "",
        key_digests=key_digests,
        max_output_tokens=None
        if any(p.unbounded for p in partials)
        else sum(p.max_output for p in partials),
    )
    diagnostics.sort(key=lambda d: (d.location.line, d.location.column) if d.location else (0, 0))
    if hidden > 0:
        # Last, after the lines it summarises.
        more = f"{hidden:,} more problem(s) in this file not shown"
        diagnostics.append(Diagnostic(more, SourceLocation(shown)))
    return JsonlScan(digest, tuple(diagnostics), media)


def _scan_small(
    path: Path, size: int, task: Task, digests: bool
) -> tuple[str, int, list[RangeScan]]:
    """A small input: hashed from one read and checked in this thread, digests kept in memory."""
    with open(path, "rb", buffering=0) as handle:
        data = handle.read(size + 1)
    # Checked from the same bytes that are hashed: the file is read once.
    partial = scan_range(str(path), 0, len(data), task, digests, in_memory=True, data=data)
    return hashlib.sha256(data).hexdigest(), len(data), [partial]


def _scan_large(
    path: Path, size: int, task: Task, digests: bool, project_root: Path, workers: int | None
) -> tuple[str, int, list[RangeScan]]:
    """A large input: hashed by a thread while this process (and maybe a forked worker for the
    second half) checks it, digests spilled to scratch files."""
    hashed: list[Any] = []
    count = _workers(size, workers, digests)
    hasher = threading.Thread(target=_hash_file, args=(str(path), hashed), daemon=True)
    hasher.start()
    spill_to = (scratch_dir(project_root) if digests else None, os.getpid())
    if count == 1:
        partials = [scan_range(str(path), 0, size, task, digests, spill_to)]
    else:
        middle = next_line_start(str(path), size // 2, size)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            second = pool.submit(
                scan_range_packed, str(path), middle, size, task, digests, spill_to
            )
            first = scan_range(str(path), 0, middle, task, digests, spill_to)
            partials = [first, msgspec.msgpack.decode(second.result(), type=RangeScan)]
    hasher.join()
    sha256, total = hashed
    return sha256, total, partials


def _repeated_hashes(partials: list[RangeScan]) -> set[int]:
    """Key hashes seen more than once, over all ranges: a set per bucket, so at most 1/16 of the
    keys are Python ints at any moment."""
    repeated: set[int] = set()
    for index in range(BUCKETS):
        values = array("q")
        for part in partials:
            values.frombytes(part.buckets[index])
        if len(set(values)) != len(values):
            seen: set[int] = set()
            for value in values:
                if value in seen:
                    repeated.add(value)
                seen.add(value)
    return repeated


def _merge(
    partials: list[RangeScan], diagnostics: list[Diagnostic], shown: str
) -> tuple[list[tuple[str, str | None, int, int]], int]:
    """Join the workers' problems and media uses, renumbering lines."""
    offset = 0
    media: list[tuple[str, str | None, int, int]] = []
    reported = 0
    for part in partials:
        for line, column, message, hint in part.problems:
            if reported < MAX_REPORTED:
                location = SourceLocation(shown, offset + line, column)
                diagnostics.append(Diagnostic(message, location, hint=hint))
                reported += 1
        media.extend((path, mime, offset + line, column) for path, mime, line, column in part.media)
        offset += part.lines
    hidden = sum(p.problem_count for p in partials) - reported
    return media, hidden


def _duplicate_diagnostics(path: Path, shown: str, repeated: set[int]) -> list[Diagnostic]:
    """Locate every occurrence of repeated keys with a second pass; only runs when a key hash
    repeats. Keys whose hash merely collides with another's occur once and are not reported."""
    lines: dict[str, list[int]] = {}
    for lineno, key, _request in iter_requests(path):
        if hash(key) in repeated:
            lines.setdefault(key, []).append(lineno)
    wanted = [key for key, found in lines.items() if len(found) > 1]
    found: list[Diagnostic] = []
    for key in sorted(wanted, key=lambda k: lines[k][1]):
        first, *others = lines[key]
        for other in others[:MAX_REPORTED]:
            found.append(
                Diagnostic(
                    f"duplicate key {key!r} (first used at line {first})",
                    SourceLocation(shown, other, 1),
                    hint="every key must be unique within the input",
                )
            )
    return found


def _resolve_media(
    root: Path,
    uses: list[tuple[str, str | None, int, int]],
    shown: str,
    diagnostics: list[Diagnostic],
) -> tuple[MediaRef, ...]:
    resolved: dict[str, MediaRef] = {}
    failed: set[str] = set()
    for path, mime, line, column in uses:
        if path in resolved or path in failed:
            continue
        result = resolve_media(root, path, mime, SourceLocation(shown, line, column))
        if isinstance(result, MediaRef):
            resolved[path] = result
        else:
            failed.add(path)
            diagnostics.append(result)
    return tuple(resolved[p] for p in sorted(resolved))


class _RawLine(msgspec.Struct):
    key: str
    request: msgspec.Raw


def iter_requests(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """Stream (line number, key, request JSON bytes as written) from an input already checked.

    For apply's upload preparation (media substitution, sharding): lines are not re-validated,
    and blank or unparsable lines are skipped."""
    decode = msgspec.json.Decoder(_RawLine).decode
    lineno = 0
    tail = b""
    with path.open("rb", buffering=0) as handle:
        while block := handle.read(BLOCK_BYTES):
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                lineno += 1
                try:
                    parsed = decode(line)
                except (msgspec.DecodeError, RecursionError):
                    continue
                yield lineno, parsed.key, bytes(parsed.request)
    if tail.strip():
        try:
            parsed = decode(tail)
        except (msgspec.DecodeError, RecursionError):
            return
        yield lineno + 1, parsed.key, bytes(parsed.request)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _empty_digest() -> SourceDigest:
    empty = hashlib.sha256(b"").hexdigest()
    return SourceDigest(sha256=empty, bytes=0, request_count=0, keys_sha256=keys_sha256({}))


__all__ = ["DIGEST_BYTES", "JsonlScan", "iter_requests", "scan_jsonl"]
