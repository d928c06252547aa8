"""Results summaries: count succeeded and failed lines of a results file, and sum the tokens
their `usageMetadata` reports, fast and bounded.

Only the summary fields of each line are decoded (msgspec skips the rest of the response), a
file is read into one reused buffer, and a large file is summarised by a second process: after
the download (`tally_file`) or while it arrives (`ResultsFollower`).
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from reconciler.cpu import next_line_start, second_process_pays
from reconciler.errors import ReconcilerError
from reconciler.state.document import TokenUsage

_BLOCK = 1 << 20
PARALLEL_SUMMARY_MIN_BYTES = 64 << 20
"""Below this a forked second process costs more than the half of the summary it takes."""


class _UsageMetadata(msgspec.Struct, gc=False, rename="camel"):
    """The token counts of a GenerateContentResponse's `usageMetadata` (int32: JSON numbers)."""

    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    cached_content_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class _Response(msgspec.Struct, gc=False, rename="camel"):
    """What a summary reads of a response: its usage; an embedding's `tokenCount` instead (an
    int64, which REST sends as a JSON string, the SDK's dump as a number)."""

    usage_metadata: _UsageMetadata | None = None
    token_count: int | str | None = None


class _Counted(msgspec.Struct, gc=False):
    """The only fields a results summary counts by; msgspec skips the response without building
    it.

    `error` and `status` are decoded only where present (a few lines in a hundred); `gc=False`
    spares the collector the tens of thousands of these each 8 MiB block makes. Together: the
    summary of 256 MiB of results 0.21 s -> 0.13 s.
    """

    key: Any = None
    error: Any = None
    status: Any = None

    @property
    def failed(self) -> bool:
        # Absent or JSON null both mean "no error", as `line.get("error") is not None` did.
        return self.error is not None or self.status is not None


class _Outcome(_Counted, gc=False):
    """The counted fields and the response's token counts (the rest of it is skipped)."""

    response: _Response | None = None


_outcome_decoder = msgspec.json.Decoder(_Outcome)
_counted_decoder = msgspec.json.Decoder(_Counted)
"""For a block whose responses do not have the documented shape: counted, their usage not."""


def _int64(value: int | str) -> int:
    """An int64 count as REST sends it (a JSON string) or as a number; 0 if it is neither."""
    try:
        return int(value)
    except ValueError:
        return 0


@dataclass(slots=True)
class UsageSum:
    """Tokens summed over result lines, by kind (the fields of `TokenUsage`)."""

    prompt: int = 0
    output: int = 0
    thinking: int = 0
    cached: int = 0
    tool_use_prompt: int = 0
    responses: int = 0
    """Responses that reported usage (errors report none)."""

    def add_response(self, response: _Response) -> None:
        usage = response.usage_metadata
        if usage is not None:
            self.prompt += usage.prompt_token_count
            self.output += usage.candidates_token_count
            self.thinking += usage.thoughts_token_count
            self.cached += usage.cached_content_token_count
            self.tool_use_prompt += usage.tool_use_prompt_token_count
            self.responses += 1
        elif response.token_count is not None:
            self.prompt += _int64(response.token_count)
            self.responses += 1

    def add_line(self, line: Mapping[str, Any]) -> None:
        """Add a decoded result line's usage (a line without a usable one adds nothing)."""
        response = line.get("response")
        if isinstance(response, dict):
            try:
                self.add_response(msgspec.convert(response, _Response))
            except msgspec.ValidationError:
                return  # not a usage the service documents: counted as reporting none

    def add_raw(self, line: bytes) -> None:
        """Add an undecoded result line's usage.

        Raises:
            ReconcilerError: the line is not JSON.
        """
        outcome = _decode_outcome(line)
        if outcome.response is not None and not outcome.failed:
            self.add_response(outcome.response)

    def add_block(self, outcomes: list[_Outcome]) -> None:
        """Add the usage of a block's decoded lines, a comprehension per count: a method call
        per line cost twice as much (200k lines: +0.1 s over the counts alone)."""
        responses = [r for o in outcomes if (r := o.response) is not None and not o.failed]
        metas = [m for r in responses if (m := r.usage_metadata) is not None]
        self.prompt += sum([m.prompt_token_count for m in metas])
        self.output += sum([m.candidates_token_count for m in metas])
        self.thinking += sum([m.thoughts_token_count for m in metas])
        self.cached += sum([m.cached_content_token_count for m in metas])
        self.tool_use_prompt += sum([m.tool_use_prompt_token_count for m in metas])
        embeddings = [
            _int64(r.token_count)
            for r in responses
            if r.usage_metadata is None and r.token_count is not None
        ]
        self.prompt += sum(embeddings)
        self.responses += len(metas) + len(embeddings)

    def merge(self, other: UsageSum) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def packed(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def token_usage(self) -> TokenUsage:
        return TokenUsage(**{name: getattr(self, name) for name in self.__slots__})


@dataclass(slots=True)
class Tally:
    """Counts of one results copy (what its ResultsRecord and `retry_failed_requests` need), and
    the tokens its responses report."""

    succeeded: int = 0
    failed: int = 0
    failed_keys: list[str] = field(default_factory=list)
    usage: UsageSum = field(default_factory=UsageSum)


def _decode_outcome(line: bytes) -> _Outcome:
    """One line's counted fields and usage (a response of an undocumented shape: none).

    Raises:
        ReconcilerError: the line is not a JSON object.
    """
    try:
        return _outcome_decoder.decode(line)
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ReconcilerError(f"a results line is not JSON: {_why(exc)}") from None
    try:
        plain = _counted_decoder.decode(line)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ReconcilerError(f"a results line is not a JSON object: {_why(exc)}") from None
    return _Outcome(key=plain.key, error=plain.error, status=plain.status)


def tally_line(line: Mapping[str, Any], tally: Tally) -> None:
    if line.get("error") is not None or line.get("status") is not None:
        tally.failed += 1
        tally.failed_keys.append(str(line.get("key", "")))
    else:
        tally.succeeded += 1
        tally.usage.add_line(line)


def tally_raw(line: bytes, tally: Tally) -> None:
    outcome = _decode_outcome(line)
    if outcome.failed:
        tally.failed += 1
        tally.failed_keys.append("" if outcome.key is None else str(outcome.key))
    else:
        tally.succeeded += 1
        if outcome.response is not None:
            tally.usage.add_response(outcome.response)


def _tally_block(block: bytes | memoryview, tally: Tally) -> None:
    """Count the result lines of `block` (whole lines) with one C call: msgspec decodes only
    the summary fields of each line and skips the rest, at several times the speed of a full
    decode, yet still rejects a line that is not JSON.

    Raises:
        ReconcilerError: a line is not a JSON object.
    """
    outcomes: list[_Outcome]
    try:
        outcomes = _outcome_decoder.decode_lines(block)
    except msgspec.ValidationError:
        outcomes = _counted_lines(block)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ReconcilerError(f"the results file is not JSON Lines: {_why(exc)}") from None
    # One comprehension over the block: the loop's per-line bytecode is a quarter of the cost.
    failed = [o for o in outcomes if o.error is not None or o.status is not None]
    tally.succeeded += len(outcomes) - len(failed)
    tally.failed += len(failed)
    tally.failed_keys.extend("" if o.key is None else str(o.key) for o in failed)
    tally.usage.add_block(outcomes)


def _counted_lines(block: bytes | memoryview) -> list[_Outcome]:
    """The lines of a block that has a response of an undocumented shape: each decoded with its
    usage if it can be, else only counted.

    Raises:
        ReconcilerError: a line is not a JSON object.
    """
    try:
        counted = _counted_decoder.decode_lines(block)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ReconcilerError(f"the results file is not JSON Lines: {_why(exc)}") from None
    lines = bytes(block).split(b"\n")
    outcomes: list[_Outcome] = []
    for plain, line in zip(counted, (ln for ln in lines if ln.strip()), strict=False):
        try:
            outcomes.append(_outcome_decoder.decode(line))
        except msgspec.ValidationError:
            outcomes.append(_Outcome(key=plain.key, error=plain.error, status=plain.status))
    return outcomes


class _LineReader:
    """Reads a file into one reused buffer and summarises the whole lines of each read.

    Reading into the same 8 MiB buffer and decoding whole lines from a view of it costs one
    copy per byte (kernel to buffer); reading a fresh 8 MiB `bytes` per block and joining the
    part line carried over cost two more copies and the page faults of each new allocation,
    which was more than the decoding (256 MiB: 0.34 s -> see benchmarks/RESULTS.md).
    """

    def __init__(self, tally: Tally, size: int | None = None) -> None:
        self._tally = tally
        # A small file (most results of small jobs) gets a buffer its size, not 8 MiB to zero
        # and fault in per file; a line longer than the buffer still grows it (`read`).
        self._buffer = bytearray(_BLOCK * 8 if size is None else min(_BLOCK * 8, size + 1))
        self._held = 0
        """Bytes of an unfinished line at the front of the buffer."""

    def read(self, handle: io.FileIO, limit: int | None = None, digest: Any = None) -> int:
        """One read of at most `limit` bytes (hashed into `digest` if given); the lines it
        completes are summarised. Returns the bytes read, 0 at the end of what is there.

        Raises:
            ReconcilerError: a line is not a JSON object.
        """
        buffer, held = self._buffer, self._held
        if held == len(buffer):  # one line longer than the buffer: make room
            buffer.extend(bytes(len(buffer)))
        room = len(buffer) - held
        with memoryview(buffer) as view:
            count = handle.readinto(
                view[held : held + (room if limit is None else min(limit, room))]
            )
            if count and digest is not None:
                digest.update(view[held : held + count])
            end = held + count
            cut = buffer.rfind(b"\n", held, end) + 1
            if cut:
                _tally_block(view[:cut], self._tally)
        if cut:
            buffer[: end - cut] = buffer[cut:end]
            self._held = end - cut
        else:
            self._held = end
        return count or 0

    def finish(self) -> None:
        """Summarise the last line if it lacks its line break."""
        if self._held:
            _tally_block(bytes(self._buffer[: self._held]) + b"\n", self._tally)
            self._held = 0


def _tally_range(path: Path, start: int, stop: int, tally: Tally) -> None:
    """Summarise the lines in bytes [start, stop) of `path` (both at line starts, or `stop` the
    file's end).

    Raises:
        ReconcilerError: a line is not a JSON object.
    """
    reader = _LineReader(tally, stop - start)
    with path.open("rb", buffering=0) as handle:
        handle.seek(start)
        left = stop - start
        while count := reader.read(handle, left):
            left -= count
    reader.finish()


def _tally_range_packed(path: Path, start: int, stop: int) -> bytes:
    """`_tally_range` in a forked worker; the tally travels back as msgpack."""
    tally = Tally()
    _tally_range(path, start, stop, tally)
    return msgspec.msgpack.encode(
        (tally.succeeded, tally.failed, tally.failed_keys, tally.usage.packed())
    )


def _follow(path: Path, conn: Connection) -> None:
    """The follower process: hash and summarise `path` while another process appends to it.

    Reads what has been written so far, waits a moment when it reaches the end, and finishes
    once the writer has sent the final size and every byte up to it has been read. Sends back
    msgpack `(sha256 hex, succeeded, failed, failed_keys, usage)` or `("error", message)`.
    """
    try:
        digest = hashlib.sha256()
        tally = Tally()
        reader = _LineReader(tally)
        offset = 0
        final: int | None = None
        with path.open("rb", buffering=0) as handle:
            while final is None or offset < final:
                count = reader.read(handle, digest=digest)
                if not count:
                    if final is None and conn.poll(0.002):
                        final = int(conn.recv())
                    elif final is not None:
                        time.sleep(0.001)
                    continue
                offset += count
        if offset != final:
            raise ReconcilerError(f"the download grew past its {final} bytes while summarised")
        reader.finish()
        reply: tuple[Any, ...] = (
            digest.hexdigest(),
            tally.succeeded,
            tally.failed,
            tally.failed_keys,
            tally.usage.packed(),
        )
    except (ReconcilerError, OSError) as exc:
        reply = ("error", str(exc))
    conn.send_bytes(msgspec.msgpack.encode(reply))


class ResultsFollower:
    """Hashes and summarises a large results download in a second process as it arrives.

    The receiving process then only receives and writes (what a plain download does), and the
    summary that would follow the download is done by the time it ends: 1 GiB, see
    benchmarks/RESULTS.md. Used only for large files when a core is idle; the adapter calls
    `begin` at each download attempt, `end` once it wrote every byte, `abandon` when the
    attempt failed (a retry truncates the file and begins again).
    """

    def __init__(self) -> None:
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.summary: Tally | None = None
        """The counts of the last download it followed to its end."""

    @property
    def following(self) -> bool:
        """Whether a second process follows a download now (`abandon` then stops it)."""
        return self._process is not None

    def begin(self, dest: Path, length: int | None) -> bool:
        """Start following `dest` if it will be large; True if this follower hashes it."""
        self.abandon()
        self.summary = None
        if length is None or length < PARALLEL_SUMMARY_MIN_BYTES or not second_process_pays():
            return False
        parent, child = multiprocessing.get_context("fork").Pipe()
        process = multiprocessing.get_context("fork").Process(
            target=_follow, args=(dest, child), daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        return True

    def end(self, size: int) -> str:
        """Wait until the follower has read all `size` bytes; their sha256 (hex).

        Raises:
            ReconcilerError: the follower failed (the caller may summarise the file itself).
        """
        assert self._conn is not None and self._process is not None
        try:
            self._conn.send(size)
            reply = msgspec.msgpack.decode(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise ReconcilerError(f"the results summary process failed: {exc}") from None
        finally:
            self._finish()
        if reply[0] == "error":
            raise ReconcilerError(f"the results summary process failed: {reply[1]}")
        sha256, succeeded, failed, failed_keys, usage = reply
        self.summary = Tally(succeeded, failed, list(failed_keys), UsageSum(*usage))
        return str(sha256)

    def abandon(self) -> None:
        """Stop following (the attempt failed, or the follower is no longer needed)."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        self._finish()

    def _finish(self) -> None:
        if self._process is not None:
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None


def tally_file(path: Path, tally: Tally) -> None:
    """Summarise every line of `path`; a large file is split at a line break and its second half
    summarised in a forked process when a core is idle (the decoder holds the GIL, so a thread
    would not help). 1 GiB: see benchmarks/RESULTS.md.

    Raises:
        ReconcilerError: a line is not a JSON object.
    """
    size = path.stat().st_size
    if size < PARALLEL_SUMMARY_MIN_BYTES or not second_process_pays():
        _tally_range(path, 0, size, tally)
        return
    middle = next_line_start(str(path), size // 2, size)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        second = pool.submit(_tally_range_packed, path, middle, size)
        _tally_range(path, 0, middle, tally)
        succeeded, failed, failed_keys, usage = msgspec.msgpack.decode(second.result())
    tally.succeeded += succeeded
    tally.failed += failed
    tally.failed_keys.extend(failed_keys)
    tally.usage.merge(UsageSum(*usage))


def key_of(line: bytes) -> str:
    """The key of one results line, decoding nothing else.

    Raises:
        ReconcilerError: the line is not JSON.
    """
    try:
        key = _outcome_decoder.decode(line).key
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ReconcilerError(f"a results line is not JSON: {_why(exc)}") from None
    return str(key)


def _why(exc: Exception) -> str:
    """The decoder's words; a line nested deeper than the decoder's recursion goes (the
    service's file, not ours) raises RecursionError, which says nothing useful."""
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
