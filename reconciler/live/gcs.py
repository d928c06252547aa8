"""Google Cloud Storage access for gs:// results: upload a results copy, read one back.

The one module that imports google-cloud-storage. It is the optional `gcs` extra, so it is
imported only when a gs:// location is used, and its absence becomes a ConfigError with a hint.
The client takes its credentials and endpoint (`STORAGE_EMULATOR_HOST` in tests) from the
environment, as `storage.Client()` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from reconciler.errors import ConfigError

SCHEME = "gs://"
_CHUNK = 1 << 20


def is_gcs(location: str) -> bool:
    return location.startswith(SCHEME)


def split_location(location: str) -> tuple[str, str]:
    """`gs://bucket/some/object` -> (`bucket`, `some/object`)."""
    bucket, _, name = location[len(SCHEME) :].partition("/")
    return bucket, name


def _bucket(name: str, *, needed_for: str) -> Any:
    try:
        from google.cloud import storage
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            f"{needed_for} needs google-cloud-storage",
            hint="pip install 'gemini-batch-reconciler[gcs]'",
        ) from None
    return storage.Client().bucket(name)


def upload_files(
    bucket: str,
    files: Sequence[tuple[str, Path]],
    *,
    content_types: dict[str, str] | None = None,
    needed_for: str,
) -> None:
    """Upload each (object name, local file) to `bucket`, in the order given.

    Args:
        content_types: per object name, the Content-Type to set (others get the client's guess).
        needed_for: what the upload is for, named in the error if the extra is missing.
    """
    handle = _bucket(bucket, needed_for=needed_for)
    types = content_types or {}
    for name, path in files:
        blob = handle.blob(name)
        if name in types:
            blob.upload_from_filename(str(path), content_type=types[name])
        else:
            blob.upload_from_filename(str(path))


def download_to(location: str, dest: Path) -> None:
    """Copy the object at gs:// `location` to the local file `dest`."""
    bucket, name = split_location(location)
    _bucket(bucket, needed_for=location).blob(name).download_to_filename(str(dest))


def copy_to_stream(location: str, sink: IO[bytes]) -> None:
    """Stream the object at gs:// `location` into `sink` in 1 MiB pieces (bounded memory)."""
    bucket, name = split_location(location)
    with _bucket(bucket, needed_for=location).blob(name).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sink.write(chunk)


def check_access(location: str) -> None:
    """Prove the credentials can reach the bucket of gs:// `location` (list one object under
    its prefix), for `reconciler doctor`; apply's uploads need the same bucket.

    Raises:
        ConfigError: the extra is missing, or the bucket cannot be reached or listed.
    """
    bucket, prefix = split_location(location)
    handle = _bucket(bucket, needed_for=location)
    try:
        list(handle.list_blobs(prefix=prefix, max_results=1))
    except Exception as exc:  # google-cloud and google-auth raise many unrelated types
        raise ConfigError(
            f"cannot list gs://{bucket}/{prefix}: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None
