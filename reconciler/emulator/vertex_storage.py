"""Cloud Storage as the Vertex routes need it: read a JSONL input, write a predictions file.

Vertex AI batch jobs read their input from and write their output to Cloud Storage, so the
emulator talks to a real Cloud Storage emulator (gcp-storage-emulator, fake-gcs-server) over
its JSON API, exactly as Vertex talks to Cloud Storage. Only the standard library is used: the
emulator stays standalone (no google-cloud-storage import), and the few calls it makes are
plain HTTP: object metadata, a media download, a media upload.

Where it is: the emulator setting `storage_url`, else `STORAGE_EMULATOR_HOST` (the variable the
Google client libraries read), else nothing (every Vertex create then answers 400).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_TIMEOUT = 60.0


class StorageError(Exception):
    """A Cloud Storage call failed; `status` is the HTTP status (404: no such object)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def storage_url(setting: str | None) -> str | None:
    """The Cloud Storage endpoint: the setting, else `STORAGE_EMULATOR_HOST`, else None."""
    value = (setting or os.environ.get("STORAGE_EMULATOR_HOST", "")).strip().rstrip("/")
    return value or None


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> (`bucket`, `a/b`).

    Raises:
        ValueError: not a gs:// URI with a bucket and an object name.
    """
    if not uri.startswith("gs://"):
        raise ValueError(f"{uri!r} is not a gs:// URI")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name:
        raise ValueError(f"{uri!r} names no object")
    return bucket, name


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


@contextmanager
def _call(request: urllib.request.Request | str) -> Iterator[IO[bytes]]:
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            yield response
    except urllib.error.HTTPError as exc:
        raise StorageError(exc.code, f"Cloud Storage answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StorageError(503, f"Cloud Storage is unreachable: {exc}") from None


def object_metadata(base: str, uri: str) -> dict[str, Any]:
    """The object's JSON resource (generation, size, md5Hash, crc32c...)."""
    bucket, name = split_uri(uri)
    with _call(f"{base}/storage/v1/b/{_quote(bucket)}/o/{_quote(name)}") as response:
        body: dict[str, Any] = json.load(response)
    return body


def exists(base: str, uri: str) -> bool:
    try:
        object_metadata(base, uri)
    except StorageError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def download(base: str, uri: str, dest: Path) -> None:
    """Stream the object's bytes into `dest`."""
    bucket, name = split_uri(uri)
    url = f"{base}/storage/v1/b/{_quote(bucket)}/o/{_quote(name)}?alt=media"
    with _call(url) as response, dest.open("wb") as sink:
        shutil.copyfileobj(response, sink, 1 << 20)


def upload(base: str, uri: str, source: Path, content_type: str) -> None:
    """Write `source` as the object at `uri` (a simple media upload)."""
    bucket, name = split_uri(uri)
    query = urllib.parse.urlencode({"uploadType": "media", "name": name})
    url = f"{base}/upload/storage/v1/b/{_quote(bucket)}/o?{query}"
    request = urllib.request.Request(
        url,
        data=source.read_bytes(),
        method="POST",
        headers={"Content-Type": content_type},
    )
    with _call(request):
        pass
