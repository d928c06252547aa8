"""Sources that live in Cloud Storage (`source.gcs`, Vertex only): their digest from the object's
version, which the caller looks up, since the manifests layer does no network I/O.

The loader gives such a source a placeholder digest (the URI alone). Before planning, the CLI
reads each object's facts through the Vertex adapter and `with_remote_sources` replaces the
placeholder with a digest of the URI, the object's generation and its checksums, so a changed
object changes the spec hash and `plan` shows `source.sha256` changing. Caveat: an object
overwritten with identical bytes gets a new generation and counts as changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.errors import Diagnostic
from reconciler.manifests.desired import Desired, DesiredResource, SourceDigest


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """What Cloud Storage says of a source object."""

    uri: str
    size: int
    generation: int | None
    crc32c: str | None
    md5: str | None


RemoteLookup = Callable[[str], RemoteObject | None]


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def placeholder_digest(uri: str) -> SourceDigest:
    """The digest of a `source.gcs` before its object was looked up: the URI alone."""
    return SourceDigest(sha256=_hex(f"gcs:{uri}"), bytes=0, request_count=0, keys_sha256="")


def object_digest(found: RemoteObject) -> SourceDigest:
    version = f"gcs:{found.uri}#{found.generation}:{found.crc32c}:{found.md5}"
    return SourceDigest(sha256=_hex(version), bytes=found.size, request_count=0, keys_sha256="")


def remote_uris(desired: Desired) -> list[str]:
    """Every `source.gcs` of `desired`, in resource order."""
    return [
        r.manifest.spec.source.gcs
        for r in desired.resources.values()
        if r.manifest.spec.source.gcs is not None
    ]


def with_remote_sources(
    desired: Desired,
    found: Mapping[str, RemoteObject | None],
    spec_hash: Callable[[DesiredResource], str],
) -> tuple[Desired, list[Diagnostic]]:
    """`desired` with every `source.gcs` digested from its object; a diagnostic per object
    that does not exist (the resource is then left out, as any invalid resource is)."""
    resources: dict[str, DesiredResource] = {}
    problems: list[Diagnostic] = []
    for name, resource in desired.resources.items():
        uri = resource.manifest.spec.source.gcs
        if uri is None:
            resources[name] = resource
            continue
        facts = found.get(uri)
        if facts is None:
            problems.append(
                Diagnostic(
                    f"resource `{name}`: source.gcs {uri} does not exist or cannot be read",
                    resource.location,
                    hint="upload the JSONL there first, or check the credentials' access",
                )
            )
            continue
        updated = dataclasses.replace(resource, source=object_digest(facts))
        resources[name] = dataclasses.replace(updated, spec_hash=spec_hash(updated))
    return dataclasses.replace(desired, resources=resources), problems
