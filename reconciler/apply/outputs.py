"""Output targets: where a resource's results go (a local file or folder, or gs://), and how a
results copy is written there, kept there after a download, and read back.

Image parts (`inlineData` with an image MIME type) are decoded to PNG/JPEG files when the output
is a folder, and the JSONL then names the file instead of carrying megabytes of base64.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from reconciler.apply.files import atomic_file, fsync_directory, iter_jsonl_lines
from reconciler.apply.summary import Tally, UsageSum, tally_file, tally_line, tally_raw
from reconciler.errors import ConfigError, ReconcilerError
from reconciler.hashing import sha256_file
from reconciler.live import gcs
from reconciler.manifests.bigquery_uri import is_bigquery

RESULTS_FILE_IN_FOLDER = "results.jsonl"
_IMAGE_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_WRITE_BUFFER = 1 << 20
_SUMMARY_BESIDE_FSYNC_BYTES = 1 << 20
"""Results up to this size are summarised, then synced: starting a thread to overlap the two
costs more than the summary of so few lines."""
"""Output is hashed and written in ~1 MiB pieces: per-line write and hash calls cost more than
the bytes they move."""


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
    def is_bigquery(self) -> bool:
        """A `bq://` table the Vertex job wrote itself: collection counts its rows (staged in
        a scratch copy) and records the table; nothing is written or uploaded there."""
        return is_bigquery(self.spec)

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
    if is_bigquery(spec):
        return OutputTarget(spec=spec, local_path=None)
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
    usage: UsageSum = field(default_factory=UsageSum)
    """Tokens the copy's responses report (all of its lines, a merged copy's old ones too)."""


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


_NAME_PREFIX_CHARS = 40
_NAME_DIGEST_CHARS = 12


def image_file_name(key: str, index: int, extension: str) -> str:
    """The file name of a response's `index`-th image: injective, bounded and portable.

    A readable prefix of the key (ASCII letters, digits, `-`, `_`; at most 40 characters) and
    12 hex characters of the key's sha256, so `a/b`, `a_b` and `a?b` get three names, a key of
    any length fits every file system's name limit, and no name starts with a dot or holds a
    character some system refuses. The results line names the file (`part.file.path`).
    """
    prefix = re.sub(r"[^A-Za-z0-9_-]+", "_", key).strip("_-")[:_NAME_PREFIX_CHARS] or "result"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    suffix = f"-{index}" if index else ""
    return f"{prefix}-{digest[:_NAME_DIGEST_CHARS]}{suffix}{extension}"


def _extract_images(line: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write each inline image of a response to `folder` and replace its data by the file name."""
    response = line.get("response")
    if not isinstance(response, dict):
        return line
    key = str(line.get("key", "result"))
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
            name = image_file_name(key, index, extension)
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
    tally = Tally()
    with atomic_file(final) as handle:
        writer = _HashingWriter(handle)
        for item in lines:
            if isinstance(item, bytes) and folder is None:
                # Kept byte for byte: only the summary fields are decoded.
                tally_raw(item, tally)
                writer.write(item)
                writer.write(b"\n")
                continue
            decoded: dict[str, Any] = _decoded(item) if isinstance(item, bytes) else item
            tally_line(decoded, tally)
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
        usage=tally.usage,
    )


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
    summary: Tally | None = None,
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
    tally = summary if summary is not None else Tally()
    with downloaded.open("rb+") as handle:
        if summary is None and size <= _SUMMARY_BESIDE_FSYNC_BYTES:
            tally_file(downloaded, tally)  # a small file: a thread would cost more
            os.fsync(handle.fileno())
        else:
            # fsync releases the GIL: the disk writes back while the summary reads the page
            # cache.
            syncing = threading.Thread(target=os.fsync, args=(handle.fileno(),), daemon=True)
            syncing.start()
            try:
                if summary is None:
                    tally_file(downloaded, tally)
            finally:
                syncing.join()
        if size and handle.seek(-1, os.SEEK_END) >= 0 and handle.read(1) != b"\n":
            handle.write(b"\n")  # the last line gets its line break, as write_results gives it
            handle.flush()
            os.fsync(handle.fileno())
            sha256 = sha256_file(downloaded)
            size += 1
    final = target.local_path
    os.replace(downloaded, final)
    fsync_directory(final.parent)
    return WrittenResults(
        location=target.results_location,
        sha256=sha256,
        bytes=size,
        succeeded=tally.succeeded,
        failed=tally.failed,
        failed_keys=tuple(tally.failed_keys),
        usage=tally.usage,
    )


def _gcs_object(target: OutputTarget, name: str) -> str:
    prefix = target.gcs_prefix
    if target.is_folder or not prefix:
        return f"{prefix}{name}"
    return prefix


def _upload_to_gcs(results: Path, folder: Path | None, target: OutputTarget) -> None:
    """Upload a staged copy: the extracted files first, the results JSONL last, so a reader
    who finds the JSONL finds the files it names."""
    assert target.gcs_bucket is not None
    files = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
    uploads = [(_gcs_object(target, path.name), path) for path in files]
    results_object = _gcs_object(target, RESULTS_FILE_IN_FOLDER)
    uploads.append((results_object, results))
    gcs.upload_files(
        target.gcs_bucket,
        uploads,
        content_types={results_object: "application/jsonl"},
        needed_for=f"output {target.spec}",
    )


def read_results(location: Path) -> Iterator[dict[str, Any]]:
    """Every result line of a local results copy, decoded."""
    for line in iter_jsonl_lines(location):
        decoded = _decoded(line)
        if isinstance(decoded, dict):
            yield decoded


def _decoded(line: bytes) -> Any:
    """One results line decoded.

    Raises:
        ReconcilerError: the line is not JSON, or nested deeper than the decoder goes (the
            service's file: a RecursionError would read as a bug of ours).
    """
    try:
        return _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ReconcilerError(f"a results line is not JSON: {exc}") from None
    except RecursionError:
        raise ReconcilerError("a results line is not JSON: nested too deeply") from None


@contextlib.contextmanager
def previous_results(location: str, project_root: Path, scratch: Path) -> Iterator[Path | None]:
    """The results copy recorded at `location` as a local file: a local output as it is (None if
    it is gone), a gs:// one downloaded into a temporary directory under `scratch`."""
    if not gcs.is_gcs(location):
        path = project_root / location
        yield path if path.is_file() else None
        return
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        path = Path(tmp) / "previous.jsonl"
        gcs.download_to(location, path)
        yield path
