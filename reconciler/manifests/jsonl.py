"""Streaming JSONL input checks: one pass that hashes, parses, shape-checks and digests every line.

A multi-GB input never sits in memory: the file is read in large binary blocks, split into lines
here, and each line is decoded by a typed msgspec decoder that checks the request's shape in C
(see `requests`). Only lines that fail (or name local media) are decoded a second time, as plain
values, to explain the problem.

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
import re
import threading
from array import array
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from reconciler.cpu import next_line_start, second_process_pays
from reconciler.errors import Diagnostic, SourceLocation
from reconciler.manifests.desired import MediaRef, SourceDigest
from reconciler.manifests.fast_lines import line_decoder, struct_max_output_tokens
from reconciler.manifests.key_digests import (
    SPILL_FRAME,
    HexDigests,
    SpilledDigests,
    digest_chunks,
    file_keys_sha256,
    keys_sha256,
)
from reconciler.manifests.model import Task
from reconciler.manifests.paths import resolve_media
from reconciler.manifests.requests import (
    DIGEST_BYTES,
    check_line,
    format_path,
    max_output_tokens,
    request_digest,
)
from reconciler.manifests.scratch import scratch_dir, spill_file

BLOCK_BYTES = 8 << 20
"""Read size: large enough that per-block overhead vanishes, small enough to keep memory flat."""
PARALLEL_MIN_BYTES = 64 << 20
INLINE_MAX_BYTES = 1 << 20
"""Up to this size a file is hashed and checked inline with its digests in memory: a thread and a
scratch file cost more than the whole check of a small input (~2 ms each, per manifest)."""
"""Below this, starting a worker costs more than it saves."""
MAX_REPORTED = 50
"""Problems reported per file in detail; the rest are counted, so a broken generator script does
not bury the first (usually telling) errors under a million lines of output."""

_BOM = b"\xef\xbb\xbf"
_BUCKETS = 16
"""Key hashes are spread over this many arrays so the final uniqueness check builds a set of
1/16 of the keys at a time."""
_BYTE_AT = re.compile(r"\(byte (\d+)\)|at byte (\d+)")
_TOO_DEEP = "the line nests JSON deeper than the decoder's recursion limit (about 1,000 levels)"
"""The documented depth limit of a JSONL line: what msgspec decodes without recursing past
Python's limit, which it reports as RecursionError rather than crashing."""


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


@dataclass(slots=True)
class _Partial:
    """What one worker found in its byte range; line numbers are relative to the range."""

    buckets: list[bytes] = field(default_factory=list)
    """array('q') bytes of hash(key) for every keyed line, by `hash & (_BUCKETS - 1)`. Python's
    str hash is per process, and a forked worker shares its parent's."""
    keyed: int = 0
    lines: int = 0
    problems: list[tuple[int, int, str, str | None]] = field(default_factory=list)
    problem_count: int = 0
    media: list[tuple[str, str | None, int, int]] = field(default_factory=list)
    pair_sum: int = 0
    """Sum of the (key, digest) pair hashes, mod 2**64 (see `file_keys_sha256`)."""
    spill: str = ""
    """The temporary file holding this range's (key, digest) frames, if digests were asked."""
    kept: dict[str, bytes] = field(default_factory=dict)
    """The (key, digest) pairs kept in memory instead of a spill file (small inputs)."""
    max_output: int = 0
    """Sum of the valid lines' `maxOutputTokens`."""
    unbounded: int = 0
    """Valid generate lines that set no `maxOutputTokens`."""


class _Keys:
    """Per-range key bookkeeping: hash arrays, and the current block's keys and digests until
    they are written to the spill file."""

    def __init__(
        self,
        digests: bool,
        spill_to: tuple[str | None, int] = (None, 0),
        *,
        in_memory: bool = False,
    ) -> None:
        self.buckets = [array("q") for _ in range(_BUCKETS)]
        self.count = 0
        self.digests = digests
        self.keys: list[str] = []
        self.digest_bytes = bytearray()
        self.pairs = bytearray()
        self.pair_sum = 0
        self.spill = spill_file(*spill_to) if digests and not in_memory else None
        self.kept: dict[str, bytes] = {}

    def add(self, key: str, request: Any) -> None:
        """One keyed line (the slow path's way; `_scan_range` inlines the same steps)."""
        value = hash(key)
        self.buckets[value & (_BUCKETS - 1)].append(value)
        self.count += 1
        if self.digests:
            digest = request_digest(request)
            self.keys.append(key)
            self.digest_bytes += digest
            self.pairs += hashlib.sha256(key.encode() + b"\0" + digest).digest()[:8]

    def flush(self) -> None:
        """Write the block's keys and digests as one frame (or keep them, for a small input);
        fold its pair hashes into the sum."""
        if not self.keys:
            return
        if self.spill is not None:
            frame = msgspec.msgpack.encode((self.keys, bytes(self.digest_bytes)))
            self.spill.write(SPILL_FRAME.pack(len(frame)) + frame)
        else:
            self.kept.update(zip(self.keys, digest_chunks(bytes(self.digest_bytes)), strict=True))
        self.pair_sum = (self.pair_sum + sum(memoryview(self.pairs).cast("Q"))) % (1 << 64)
        self.keys.clear()
        self.digest_bytes.clear()
        self.pairs.clear()

    def finish(self, out: _Partial) -> None:
        self.flush()
        out.buckets = [bucket.tobytes() for bucket in self.buckets]
        out.keyed = self.count
        out.pair_sum = self.pair_sum
        out.kept = self.kept
        if self.spill is not None:
            self.spill.close()
            out.spill = self.spill.name


def _field_column(line: bytes, path: tuple[str | int, ...]) -> int:
    """Column of the innermost named field of `path` in the line (its first occurrence), else 1.

    Only for lines already known to be wrong, so a search per problem costs nothing that matters."""
    for step in reversed(path):
        if isinstance(step, str):
            found = re.search(rb'"' + re.escape(step.encode()) + rb'"\s*:', line)
            if found:
                return len(line[: found.start()].decode("utf-8", "replace")) + 1
    return 1


def _byte_column(message: str) -> int:
    match = _BYTE_AT.search(message)
    if match is None:
        return 1
    return int(match.group(1) or match.group(2)) + 1


def _explain(line: bytes, lineno: int, task: Task, out: _Partial, keys: _Keys) -> None:
    """The slow path, authoritative: decode as plain JSON, check, and say exactly what is wrong.

    Valid lines the typed decoder does not cover (media parts, rarer fields) end here too, so
    this also records their key, digest and media."""

    def problem(column: int, message: str, hint: str | None = None) -> None:
        out.problem_count += 1
        if len(out.problems) < MAX_REPORTED:
            out.problems.append((lineno, column, message, hint))

    if lineno == 1 and line.startswith(_BOM):
        problem(
            1, "the file starts with a UTF-8 byte order mark", "save the file as UTF-8 without BOM"
        )
        return
    try:
        value: Any = msgspec.json.decode(line)
        problems, media = check_line(value, task)
    except RecursionError:
        problem(1, _TOO_DEEP, "flatten the request; real requests nest a few dozen levels")
        return
    except msgspec.DecodeError as exc:
        text = str(exc)
        if "truncated" in text:
            problem(len(line.rstrip()) + 1, "invalid JSON: the line ends before the value does")
        else:
            reason = _BYTE_AT.sub("", text.removeprefix("JSON is malformed: ")).strip()
            problem(_byte_column(text), f"invalid JSON: {reason}")
        return
    for item in problems:
        where = format_path(item.path)
        message = f"{where}: {item.message}" if where else item.message
        problem(_field_column(line, item.path), message, item.hint)
    if isinstance(value, dict) and isinstance(value.get("key"), str) and value["key"]:
        keys.add(value["key"], value.get("request"))
        if task is Task.GENERATE and not problems:
            limit = max_output_tokens(value.get("request"))
            if limit is None:
                out.unbounded += 1
            else:
                out.max_output += limit
    for use in media:
        out.media.append((use.path, use.mime_type, lineno, 1))


def _scan_range(
    path: str,
    start: int,
    end: int,
    task: Task,
    digests: bool,
    spill_to: tuple[str | None, int] = (None, 0),
    *,
    in_memory: bool = False,
) -> _Partial:
    """Check the lines in [start, end) of `path`; `start` and `end` fall on line starts.

    `in_memory` keeps the digests in `_Partial.kept` instead of a spill file."""
    decode = line_decoder(task).decode
    digest_of = request_digest
    sha256 = hashlib.sha256
    out = _Partial()
    state = _Keys(digests, spill_to, in_memory=in_memory)
    buckets = state.buckets
    mask = _BUCKETS - 1
    block_keys = state.keys
    digest_bytes = state.digest_bytes
    pairs = state.pairs
    keyed = 0
    lineno = 0
    # Output bound, generate only: the limits summed, and the lines that set none.
    output_of = struct_max_output_tokens if task is Task.GENERATE else None
    max_output = 0
    unbounded = 0
    tail = b""
    remaining = end - start
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        while remaining > 0:
            block = handle.read(min(BLOCK_BYTES, remaining))
            if not block:
                break
            remaining -= len(block)
            lines = (tail + block).split(b"\n") if tail else block.split(b"\n")
            tail = lines.pop()
            for line in lines:
                lineno += 1
                try:
                    parsed = decode(line)
                except (msgspec.DecodeError, RecursionError):  # ValidationError is one too
                    if line.strip():
                        _explain(line, lineno, task, out, state)
                    continue
                key = parsed.key
                value = hash(key)
                buckets[value & mask].append(value)
                keyed += 1
                if output_of is not None:
                    limit = output_of(parsed.request)
                    if limit is None:
                        unbounded += 1
                    else:
                        max_output += limit
                if digests:
                    digest = digest_of(parsed.request)
                    block_keys.append(key)
                    digest_bytes += digest
                    pairs += sha256(key.encode() + b"\0" + digest).digest()[:8]
            state.flush()
        if tail:
            lineno += 1
            if tail.strip():
                # The last line has no newline: the slow path handles it, once per file.
                _explain(tail, lineno, task, out, state)
    state.count += keyed
    state.finish(out)
    out.lines = lineno
    out.max_output += max_output
    out.unbounded += unbounded
    return out


def _scan_range_packed(
    path: str, start: int, end: int, task: Task, digests: bool, spill_to: tuple[str | None, int]
) -> bytes:
    """`_scan_range` for a worker process: msgpack is several times cheaper than pickle for a
    dict of a million keys, and the pool then pickles one bytes object."""
    return msgspec.msgpack.encode(_scan_range(path, start, end, task, digests, spill_to))


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
) -> tuple[str, int, list[_Partial]]:
    """A small input: hashed from one read and checked in this thread, digests kept in memory."""
    with open(path, "rb", buffering=0) as handle:
        data = handle.read(size + 1)
    # Checked from the same bytes' file; a file that changes meanwhile differs from its hash just
    # as it could from the threaded scan's.
    partial = _scan_range(str(path), 0, len(data), task, digests, in_memory=True)
    return hashlib.sha256(data).hexdigest(), len(data), [partial]


def _scan_large(
    path: Path, size: int, task: Task, digests: bool, project_root: Path, workers: int | None
) -> tuple[str, int, list[_Partial]]:
    """A large input: hashed by a thread while this process (and maybe a forked worker for the
    second half) checks it, digests spilled to scratch files."""
    hashed: list[Any] = []
    count = _workers(size, workers, digests)
    hasher = threading.Thread(target=_hash_file, args=(str(path), hashed), daemon=True)
    hasher.start()
    spill_to = (scratch_dir(project_root) if digests else None, os.getpid())
    if count == 1:
        partials = [_scan_range(str(path), 0, size, task, digests, spill_to)]
    else:
        middle = next_line_start(str(path), size // 2, size)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            second = pool.submit(
                _scan_range_packed, str(path), middle, size, task, digests, spill_to
            )
            first = _scan_range(str(path), 0, middle, task, digests, spill_to)
            partials = [first, msgspec.msgpack.decode(second.result(), type=_Partial)]
    hasher.join()
    sha256, total = hashed
    return sha256, total, partials


def _repeated_hashes(partials: list[_Partial]) -> set[int]:
    """Key hashes seen more than once, over all ranges: a set per bucket, so at most 1/16 of the
    keys are Python ints at any moment."""
    repeated: set[int] = set()
    for index in range(_BUCKETS):
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
    partials: list[_Partial], diagnostics: list[Diagnostic], shown: str
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
