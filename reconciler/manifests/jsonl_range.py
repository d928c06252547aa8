"""One byte range of a JSONL input checked line by line: what `jsonl.scan_jsonl` runs in this
process and, for the second half of a large input, in a forked worker.

Each line is decoded by a typed msgspec decoder that checks the request's shape in C (see
`fast_lines`); only lines it refuses (or that name local media) are decoded again as plain values
by `_explain`, the authoritative slow path that words the problem. Keys are kept as their
(per-process) hash in BUCKETS arrays; per-key digests go to a spill file block by block, or stay
in memory for a small input. The result is a `RangeScan`, with line numbers relative to the range.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from reconciler.manifests.fast_lines import line_decoder, struct_max_output_tokens
from reconciler.manifests.key_digests import SPILL_FRAME, digest_chunks
from reconciler.manifests.model import Task
from reconciler.manifests.requests import (
    check_line,
    format_path,
    max_output_tokens,
    request_digest,
)
from reconciler.manifests.scratch import spill_file

BLOCK_BYTES = 8 << 20
"""Read size: large enough that per-block overhead vanishes, small enough to keep memory flat."""
MAX_REPORTED = 50
"""Problems reported per file in detail; the rest are counted, so a broken generator script does
not bury the first (usually telling) errors under a million lines of output."""

_BOM = b"\xef\xbb\xbf"
BUCKETS = 16
"""Key hashes are spread over this many arrays so the final uniqueness check builds a set of
1/16 of the keys at a time."""
_BYTE_AT = re.compile(r"\(byte (\d+)\)|at byte (\d+)")
_TOO_DEEP = "the line nests JSON deeper than the decoder's recursion limit (about 1,000 levels)"
"""The documented depth limit of a JSONL line: what msgspec decodes without recursing past
Python's limit, which it reports as RecursionError rather than crashing."""


@dataclass(slots=True)
class RangeScan:
    """What the check of one byte range found; line numbers are relative to the range."""

    buckets: list[bytes] = field(default_factory=list)
    """array('q') bytes of hash(key) for every keyed line, by `hash & (BUCKETS - 1)`. Python's
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
        self.buckets = [array("q") for _ in range(BUCKETS)]
        self.count = 0
        self.digests = digests
        self.keys: list[str] = []
        self.digest_bytes = bytearray()
        self.pairs = bytearray()
        self.pair_sum = 0
        self.spill = spill_file(*spill_to) if digests and not in_memory else None
        self.kept: dict[str, bytes] = {}

    def add(self, key: str, request: Any) -> None:
        """One keyed line (the slow path's way; `scan_range` inlines the same steps)."""
        value = hash(key)
        self.buckets[value & (BUCKETS - 1)].append(value)
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

    def finish(self, out: RangeScan) -> None:
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


def _explain(line: bytes, lineno: int, task: Task, out: RangeScan, keys: _Keys) -> None:
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


def scan_range(
    path: str,
    start: int,
    end: int,
    task: Task,
    digests: bool,
    spill_to: tuple[str | None, int] = (None, 0),
    *,
    in_memory: bool = False,
    data: bytes | None = None,
) -> RangeScan:
    """Check the lines in [start, end) of `path`; `start` and `end` fall on line starts.

    `in_memory` keeps the digests in `RangeScan.kept` instead of a spill file. `data`: the
    range's bytes when the caller has read them already (a small input is read once, for its
    hash and its check), so the file is not read again."""
    decode = line_decoder(task).decode
    digest_of = request_digest
    sha256 = hashlib.sha256
    out = RangeScan()
    state = _Keys(digests, spill_to, in_memory=in_memory)
    buckets = state.buckets
    mask = BUCKETS - 1
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
    for block in [data] if data is not None else _blocks(path, start, end):
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


def _blocks(path: str, start: int, end: int) -> Iterator[bytes]:
    """[start, end) of `path` in reads of up to BLOCK_BYTES."""
    remaining = end - start
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        while remaining > 0:
            block = handle.read(min(BLOCK_BYTES, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block


def scan_range_packed(
    path: str, start: int, end: int, task: Task, digests: bool, spill_to: tuple[str | None, int]
) -> bytes:
    """`scan_range` for a worker process: msgpack is several times cheaper than pickle for a
    dict of a million keys, and the pool then pickles one bytes object."""
    return msgspec.msgpack.encode(scan_range(path, start, end, task, digests, spill_to))
