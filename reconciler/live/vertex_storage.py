"""Cloud Storage for Vertex jobs: staged inputs (content-addressed), object facts, predictions.

google-cloud-storage is the optional `gcs` extra (as for gs:// outputs, live/gcs.py); its
absence becomes a ConfigError with the install command. The calls are synchronous: the adapter
runs them in worker threads. The client reaches Google with Application Default Credentials,
or an emulator (`VertexTarget.storage_url`) without any.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from reconciler.errors import (
    ConfigError,
    PermanentServiceError,
    ServiceError,
    TransientServiceError,
)
from reconciler.hashing import sha256_file
from reconciler.live.snapshot import LiveFile

SCHEME = "gs://"
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses of a Cloud Storage failure worth trying again."""


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    """What Cloud Storage says of one object: enough to tell a changed one from the same."""

    uri: str
    size: int
    generation: int | None
    crc32c: str | None
    md5: str | None
    created: datetime | None


def split(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> (`bucket`, `a/b`)."""
    bucket, _, name = uri.removeprefix(SCHEME).partition("/")
    return bucket, name


class Storage:
    """One google-cloud-storage client, made on first use."""

    def __init__(self, endpoint: str | None, project: str) -> None:
        self._endpoint = endpoint
        self._project = project
        self._client: Any = None

    def _bucket(self, name: str) -> Any:
        if self._client is None:
            try:
                from google.cloud import storage
            except ImportError:  # pragma: no cover - depends on the installed extras
                raise ConfigError(
                    "`endpoint: vertex` stages inputs in Cloud Storage and needs "
                    "google-cloud-storage",
                    hint="pip install 'gemini-batch-reconciler[gcs]'",
                ) from None
            if self._endpoint is None:
                self._client = storage.Client(project=self._project)
            else:
                from google.auth.credentials import AnonymousCredentials

                self._client = storage.Client(
                    project=self._project,
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": self._endpoint},
                )
        return self._client.bucket(name)

    def facts(self, uri: str) -> ObjectFacts | None:
        """The object's facts, or None when it does not exist."""
        bucket, name = split(uri)
        blob = self._bucket(bucket).get_blob(name)
        if blob is None:
            return None
        return ObjectFacts(
            uri=uri,
            size=int(blob.size or 0),
            generation=int(blob.generation) if blob.generation is not None else None,
            crc32c=blob.crc32c,
            md5=blob.md5_hash,
            created=blob.time_created,
        )

    def upload(self, uri: str, path: Path, content_type: str) -> ObjectFacts:
        bucket, name = split(uri)
        blob = self._bucket(bucket).blob(name)
        blob.upload_from_filename(str(path), content_type=content_type)
        facts = self.facts(uri)
        if facts is None:  # pragma: no cover - the service lost what it just accepted
            raise ConfigError(f"Cloud Storage did not keep {uri}")
        return facts

    def download(self, uri: str, dest: Path) -> None:
        bucket, name = split(uri)
        self._bucket(bucket).blob(name).download_to_filename(str(dest))

    def delete(self, uri: str) -> bool:
        """Delete the object; False when it was already gone."""
        bucket, name = split(uri)
        blob = self._bucket(bucket).get_blob(name)
        if blob is None:
            return False
        blob.delete()
        return True

    def list(self, prefix_uri: str) -> list[ObjectFacts]:
        bucket, prefix = split(prefix_uri)
        return [
            ObjectFacts(
                uri=f"{SCHEME}{bucket}/{blob.name}",
                size=int(blob.size or 0),
                generation=int(blob.generation) if blob.generation is not None else None,
                crc32c=blob.crc32c,
                md5=blob.md5_hash,
                created=blob.time_created,
            )
            for blob in self._bucket(bucket).list_blobs(prefix=prefix)
        ]


def storage_error(exc: Exception, call: str) -> ServiceError:
    """A Cloud Storage client failure as the adapter's errors: busy or unreachable is
    transient."""
    code = getattr(exc, "code", None)
    status = code if isinstance(code, int) else None
    message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if status is None or status in _TRANSIENT:
        return TransientServiceError(message, call=call, status_code=status)
    return PermanentServiceError(message, call=call, status_code=status)


def measure(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file about to be staged."""
    return sha256_file(path), path.stat().st_size


def live_file(facts: ObjectFacts) -> LiveFile:
    # Staged objects do not expire: reuse is limited only by their existence.
    return LiveFile(
        name=facts.uri,
        display_name=facts.uri.rsplit("/", 1)[-1],
        size_bytes=facts.size,
        sha256_b64=None,
        state="ACTIVE",
        expiration_time=None,
        source="UPLOADED",
        uri=facts.uri,
        create_time=facts.created,
    )
