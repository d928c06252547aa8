"""Durable result copies: stream, checksum, then rename into place (or upload to gs://).

A results copy is written to a temporary file beside its final place and renamed over it only
once complete and checksummed, so a crash never leaves a half-written output that looks whole.
Image parts (`inlineData` with an image MIME type) are decoded to PNG/JPEG files when the output
is a folder, and the JSONL then names the file instead of carrying megabytes of base64.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import msgspec

from reconciler.cpu import next_line_start, second_process_pays
from reconciler.errors import ConfigError, ReconcilerError

RESULTS_FILE_IN_FOLDER = "results.jsonl"
_IMAGE_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}
_BLOCK = 1 << 20
PARALLEL_SUMMARY_MIN_BYTES = 64 << 20
"""Below this a forked second process costs more than the half of the summary it takes."""

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_WRITE_BUFFER = 1 << 20
"""Output is hashed and written in ~1 MiB pieces: per-line write and hash calls cost more than
the bytes they move."""


class _Outcome(msgspec.Struct, gc=False):
    """The only fields a results summary reads; msgspec skips the response without building it.

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


_outcome_decoder = msgspec.json.Decoder(_Outcome)


@dataclass(frozen=True, slots=True)
class OutputTarget:
    """Where one resource's results go, resolved against the project root."""

    spec: str
    """As written in the manifest (recorded in state, shown to users)."""
    local_path: Path | None
    """The file (or folder, for folder outputs) on disk; None for gs:// outputs."""
    gcs_bucket: str | None = None
    gcs_prefix: str = ""

    @property
    def is_folder(self) -> bool:
        return self.spec.endswith("/")

    @property
    def is_gcs(self) -> bool:
        return self.gcs_bucket is not None

    @property
    def results_location(self) -> str:
        """The location of the JSONL results, as recorded in state."""
        if self.is_folder:
            return self.spec + RESULTS_FILE_IN_FOLDER
        return self.spec


def resolve_output(spec: str, project_root: Path, output_root: str = ".") -> OutputTarget:
    """Resolve a manifest's `output` and confine local paths under the output root.

    Raises:
        ConfigError: the path escapes the output root (`..`, absolute, or through a symlink).
    """
    if spec.startswith("gs://"):
        rest = spec[len("gs://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(f"output {spec!r}: a gs:// URL needs a bucket name")
        return OutputTarget(spec=spec, local_path=None, gcs_bucket=bucket, gcs_prefix=prefix)
    root = (project_root / output_root).resolve()
    candidate = (project_root / spec).resolve()
    if Path(spec).is_absolute() or not candidate.is_relative_to(root):
        raise ConfigError(f"output {spec!r} is outside the project's output root {root}")
    return OutputTarget(spec=spec, local_path=candidate)


@dataclass(frozen=True, slots=True)
class WrittenResults:
    """What a results copy holds, for the state's ResultsRecord."""

    location: str
    sha256: str
    bytes: int
    succeeded: int
    failed: int
    failed_keys: tuple[str, ...]
    """Keys whose result is an error (for `retry_failed_requests`)."""


@dataclass(slots=True)
class _Tally:
    succeeded: int = 0
    failed: int = 0
    failed_keys: list[str] = field(default_factory=list)


class _HashingWriter:
    """A binary file writer that hashes what it writes, in large pieces (see `_WRITE_BUFFER`)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= _WRITE_BUFFER:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._handle.write(data)
        self.sha256.update(data)
        self.bytes += len(data)


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable (the new entry, not only the file's bytes)."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[IO[bytes]]:
    """A temp file beside `final`, fsynced and renamed over it only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_directory(final.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def iter_jsonl_lines(path: Path) -> Iterator[bytes]:
    """Every non-blank line of a JSONL file, read in large blocks (bounded memory)."""
    with path.open("rb") as handle:
        pending = b""
        while block := handle.read(_BLOCK):
            pending += block
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line
        if pending.strip():
            yield pending


def _tally(line: Mapping[str, Any], tally: _Tally) -> None:
    if line.get("error") is not None or line.get("status") is not None:
        tally.failed += 1
        tally.failed_keys.append(str(line.get("key", "")))
    else:
        tally.succeeded += 1


def _tally_raw(line: bytes, tally: _Tally) -> None:
    outcome = _outcome_decoder.decode(line)
    if outcome.failed:
        tally.failed += 1
        tally.failed_keys.append("" if outcome.key is None else str(outcome.key))
    else:
        tally.succeeded += 1


def _tally_block(block: bytes | memoryview, tally: _Tally) -> None:
    """Count the result lines of `block` (whole lines) with one C call: msgspec decodes only
    the summary fields of each line and skips the rest, at several times the speed of a full
    decode, yet still rejects a line that is not JSON.

    Raises:
        ReconcilerError: a line is not a JSON object.
    """
    try:
        outcomes = _outcome_decoder.decode_lines(block)
    except msgspec.DecodeError as exc:
        raise ReconcilerError(f"the results file is not JSON Lines: {exc}") from None
    # One comprehension over the block: the loop's per-line bytecode is a quarter of the cost.
    failed = [o for o in outcomes if o.error is not None or o.status is not None]
    tally.succeeded += len(outcomes) - len(failed)
    tally.failed += len(failed)
    tally.failed_keys.extend("" if o.key is None else str(o.key) for o in failed)


class _LineReader:
    """Reads a file into one reused buffer and summarises the whole lines of each read.

    Reading into the same 8 MiB buffer and decoding whole lines from a view of it costs one
    copy per byte (kernel to buffer); reading a fresh 8 MiB `bytes` per block and joining the
    part line carried over cost two more copies and the page faults of each new allocation,
    which was more than the decoding (256 MiB: 0.34 s -> see benchmarks/RESULTS.md).
    """

    def __init__(self, tally: _Tally) -> None:
        self._tally = tally
        self._buffer = bytearray(_BLOCK * 8)
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


def _tally_range(path: Path, start: int, stop: int, tally: _Tally) -> None:
    """Summarise the lines in bytes [start, stop) of `path` (both at line starts, or `stop` the
    file's end).

    Raises:
        ReconcilerError: a line is not a JSON object.
    """
    reader = _LineReader(tally)
    with path.open("rb", buffering=0) as handle:
        handle.seek(start)
        left = stop - start
        while count := reader.read(handle, left):
            left -= count
    reader.finish()


def _tally_range_packed(path: Path, start: int, stop: int) -> bytes:
    """`_tally_range` in a forked worker; the tally travels back as msgpack."""
    tally = _Tally()
    _tally_range(path, start, stop, tally)
    return msgspec.msgpack.encode((tally.succeeded, tally.failed, tally.failed_keys))


def _follow(path: Path, conn: Connection) -> None:
    """The follower process: hash and summarise `path` while another process appends to it.

    Reads what has been written so far, waits a moment when it reaches the end, and finishes
    once the writer has sent the final size and every byte up to it has been read. Sends back
    msgpack `(sha256 hex, succeeded, failed, failed_keys)` or `("error", message)`.
    """
    try:
        digest = hashlib.sha256()
        tally = _Tally()
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
        self.summary: _Tally | None = None
        """The counts of the last download it followed to its end."""

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
        sha256, succeeded, failed, failed_keys = reply
        self.summary = _Tally(succeeded, failed, list(failed_keys))
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


def _tally_file(path: Path, tally: _Tally) -> None:
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
        succeeded, failed, failed_keys = msgspec.msgpack.decode(second.result())
    tally.succeeded += succeeded
    tally.failed += failed
    tally.failed_keys.extend(failed_keys)


def _extract_images(line: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write each inline image of a response to `folder` and replace its data by the file name."""
    response = line.get("response")
    if not isinstance(response, dict):
        return line
    key = str(line.get("key", "result"))
    safe_key = "".join(c if c.isalnum() or c in "-_." else "_" for c in key) or "result"
    index = 0
    for candidate in response.get("candidates") or []:
        for part in (candidate.get("content") or {}).get("parts") or []:
            blob = part.get("inlineData") or part.get("inline_data")
            if not isinstance(blob, dict):
                continue
            mime = str(blob.get("mimeType") or blob.get("mime_type") or "")
            extension = _IMAGE_EXTENSIONS.get(mime)
            data = blob.get("data")
            if extension is None or not isinstance(data, str):
                continue
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                continue
            name = f"{safe_key}{'-' + str(index) if index else ''}{extension}"
            with atomic_file(folder / name) as handle:
                handle.write(raw)
            part.pop("inlineData", None)
            part.pop("inline_data", None)
            part["file"] = {"path": name, "mimeType": mime, "bytes": len(raw)}
            index += 1
    return line


def write_results(
    lines: Iterable[bytes | dict[str, Any]],
    target: OutputTarget,
    staging_dir: Path,
) -> WrittenResults:
    """Write normalised result lines (`{"key", "response"|"error"}`) to the target, atomically.

    For a folder target, images are decoded into files beside `results.jsonl`. For gs:// targets
    the copy is staged in `staging_dir` and then uploaded.
    """
    folder: Path | None = None
    if target.local_path is not None:
        final = (
            target.local_path / RESULTS_FILE_IN_FOLDER if target.is_folder else target.local_path
        )
        folder = target.local_path if target.is_folder else None
    else:
        staging_dir.mkdir(parents=True, exist_ok=True)
        final = staging_dir / "results.jsonl"
        folder = staging_dir / "files" if target.is_folder else None
    tally = _Tally()
    with atomic_file(final) as handle:
        writer = _HashingWriter(handle)
        for item in lines:
            if isinstance(item, bytes) and folder is None:
                # Kept byte for byte: only the summary fields are decoded.
                _tally_raw(item, tally)
                writer.write(item)
                writer.write(b"\n")
                continue
            decoded: dict[str, Any] = _decoder.decode(item) if isinstance(item, bytes) else item
            _tally(decoded, tally)
            if folder is not None:
                decoded = _extract_images(decoded, folder)
            writer.write(_encoder.encode(decoded))
            writer.write(b"\n")
        writer.flush()
    if target.is_gcs:
        _upload_to_gcs(final, folder, target)
    return WrittenResults(
        location=target.results_location,
        sha256=writer.sha256.hexdigest(),
        bytes=writer.bytes,
        succeeded=tally.succeeded,
        failed=tally.failed,
        failed_keys=tuple(tally.failed_keys),
    )


def temp_beside(final: Path) -> Path:
    """A new empty temp file beside `final`, for a download that becomes `final` in place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    return Path(name)


def can_keep_in_place(target: OutputTarget) -> bool:
    """Whether a downloaded results file can become the output as is (no images to extract,
    no bucket to upload to): then `keep_downloaded` saves a second copy of every byte."""
    return target.local_path is not None and not target.is_folder


def keep_downloaded(
    downloaded: Path,
    target: OutputTarget,
    sha256: str,
    size: int,
    *,
    summary: _Tally | None = None,
) -> WrittenResults:
    """Make a results file downloaded beside the target the target, summarised and durable.

    `sha256` and `size` are what the download measured while writing, so the bytes are not
    hashed twice, and they are kept as the service wrote them (blank lines included: readers
    skip those). `summary`: the counts a `ResultsFollower` made during the download, so the
    file is not read again.

    Raises:
        ReconcilerError: a line is not JSON (the file is left in place for the caller).
    """
    assert can_keep_in_place(target) and target.local_path is not None
    tally = summary if summary is not None else _Tally()
    with downloaded.open("rb+") as handle:
        # fsync releases the GIL: the disk writes back while the summary reads the page cache.
        syncing = threading.Thread(target=os.fsync, args=(handle.fileno(),), daemon=True)
        syncing.start()
        try:
            if summary is None:
                _tally_file(downloaded, tally)
        finally:
            syncing.join()
        if size and handle.seek(-1, os.SEEK_END) >= 0 and handle.read(1) != b"\n":
            handle.write(b"\n")  # the last line gets its line break, as write_results gives it
            handle.flush()
            os.fsync(handle.fileno())
            sha256 = sha256_of(downloaded)
            size += 1
    final = target.local_path
    os.replace(downloaded, final)
    _fsync_directory(final.parent)
    return WrittenResults(
        location=target.results_location,
        sha256=sha256,
        bytes=size,
        succeeded=tally.succeeded,
        failed=tally.failed,
        failed_keys=tuple(tally.failed_keys),
    )


def _gcs_object(target: OutputTarget, name: str) -> str:
    prefix = target.gcs_prefix
    if target.is_folder or not prefix:
        return f"{prefix}{name}"
    return prefix


def _upload_to_gcs(results: Path, folder: Path | None, target: OutputTarget) -> None:
    """Upload a staged copy. Import here: google-cloud-storage is the optional `gcs` extra."""
    try:
        from google.cloud import storage
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            f"output {target.spec} needs google-cloud-storage",
            hint="pip install 'reconciler[gcs]'",
        ) from None
    assert target.gcs_bucket is not None
    client = storage.Client()
    bucket = client.bucket(target.gcs_bucket)
    if folder is not None and folder.is_dir():
        for path in sorted(folder.iterdir()):
            bucket.blob(_gcs_object(target, path.name)).upload_from_filename(str(path))
    bucket.blob(_gcs_object(target, RESULTS_FILE_IN_FOLDER)).upload_from_filename(
        str(results), content_type="application/jsonl"
    )


def read_results(location: Path) -> Iterator[dict[str, Any]]:
    """Every result line of a local results copy, decoded."""
    for line in iter_jsonl_lines(location):
        decoded = _decoder.decode(line)
        if isinstance(decoded, dict):
            yield decoded


def _key_of(line: bytes) -> str:
    try:
        key = _outcome_decoder.decode(line).key
    except msgspec.DecodeError as exc:
        raise ReconcilerError(f"a results line is not JSON: {exc}") from None
    return str(key)


def merge_results(
    previous: Iterable[bytes],
    replacements: Iterable[bytes | dict[str, Any]],
    scratch: Path,
    *,
    keep: Callable[[str], bool] | None = None,
) -> Iterator[bytes]:
    """Previous result lines with each line whose key has a replacement swapped in, in the
    previous order; replacement keys absent from `previous` follow in the order they came.
    Lines whose key `keep` refuses (requests no longer in the source) are left out.

    Used by `retry_failed_requests` and incremental re-runs, which run only some keys again.
    Memory holds each replacement's key and place in a spill file in `scratch`, never the
    lines themselves (a re-run can replace most of a large results file), and only the key of a
    previous line is decoded: the rest is copied byte for byte.

    Raises:
        ReconcilerError: a line is not JSON.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    spill = scratch / "replacements.jsonl"
    index: dict[str, tuple[int, int]] = {}
    """Key -> (offset, length) in the spill file; a later line for a key wins."""
    try:
        with spill.open("wb") as out:
            offset = 0
            for item in replacements:
                raw = item if isinstance(item, bytes) else _encoder.encode(item)
                index[_key_of(raw)] = (offset, len(raw))
                out.write(raw)
                out.write(b"\n")
                offset += len(raw) + 1
        with spill.open("rb") as spilled:

            def replacement(place: tuple[int, int]) -> bytes:
                spilled.seek(place[0])
                return spilled.read(place[1])

            for line in previous:
                key = _key_of(line)
                place = index.pop(key, None)
                if keep is None or keep(key):
                    yield line if place is None else replacement(place)
            for key, place in index.items():
                if keep is None or keep(key):
                    yield replacement(place)
    finally:
        spill.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
