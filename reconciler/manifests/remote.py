"""Sources read in place by Vertex (`source.gcs`, `source.bigquery`): their digest from the
object's version or the table's metadata, which the caller looks up, since the manifests layer
does no network I/O.

The loader gives such a source a placeholder digest (the URI alone). Before planning, the CLI
reads each object's facts through the Vertex adapter and `with_remote_sources` replaces the
placeholder with a digest of the URI, the object's generation and its checksums, so a changed
object changes the spec hash and `plan` shows `source.sha256` changing. Caveat: an object
overwritten with identical bytes gets a new generation and counts as changed.

A BigQuery table is digested from its metadata (tables.get: last modified time, rows, bytes,
etag), not its content. Caveats: a rewrite that leaves all four unchanged is not seen, and rows
still in the streaming buffer are not in `numRows`/`numBytes` (they change `etag` and the
modified time only once BigQuery commits them).

What only the service knows of such a source is checked against Vertex's limits here too (an
object past 1 GB, a table past 200,000 rows: manifests/vertex_rules.LIMITS), since a source
read in place cannot be split into shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.errors import Diagnostic
from reconciler.manifests.desired import Desired, DesiredResource, SourceDigest
from reconciler.manifests.vertex_rules import remote_problem


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """What Cloud Storage says of a source object."""

    uri: str
    size: int
    generation: int | None
    crc32c: str | None
    md5: str | None


@dataclass(frozen=True, slots=True)
class RemoteTable:
    """What BigQuery's tables.get says of a source table."""

    uri: str
    last_modified: str | None
    num_rows: int | None
    num_bytes: int | None
    etag: str | None


Remote = RemoteObject | RemoteTable
RemoteLookup = Callable[[str], Remote | None]


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def placeholder_digest(uri: str) -> SourceDigest:
    """The digest of a `source.gcs` before its object was looked up: the URI alone."""
    return SourceDigest(sha256=_hex(f"gcs:{uri}"), bytes=0, request_count=0, keys_sha256="")


def object_digest(found: Remote) -> SourceDigest:
    """The digest of a looked-up object or table: its version, never its content."""
    if isinstance(found, RemoteTable):
        version = (
            f"bq:{found.uri}#{found.last_modified}:{found.num_rows}:{found.num_bytes}:{found.etag}"
        )
        return SourceDigest(
            sha256=_hex(version), bytes=found.num_bytes or 0, request_count=0, keys_sha256=""
        )
    version = f"gcs:{found.uri}#{found.generation}:{found.crc32c}:{found.md5}"
    return SourceDigest(sha256=_hex(version), bytes=found.size, request_count=0, keys_sha256="")


def remote_source(resource: DesiredResource) -> str | None:
    """The `source.gcs` or `source.bigquery` URI of `resource`, if it has one."""
    source = resource.manifest.spec.source
    return source.gcs if source.gcs is not None else source.bigquery


def remote_uris(desired: Desired) -> list[str]:
    """Every `source.gcs` and `source.bigquery` of `desired`, in resource order."""
    return [uri for r in desired.resources.values() if (uri := remote_source(r)) is not None]


def with_remote_sources(
    desired: Desired,
    found: Mapping[str, Remote | None],
    spec_hash: Callable[[DesiredResource], str],
) -> tuple[Desired, list[Diagnostic]]:
    """`desired` with every remote source digested from its object or table; a diagnostic per
    one that does not exist (the resource is then left out, as any invalid resource is)."""
    resources: dict[str, DesiredResource] = {}
    problems: list[Diagnostic] = []
    for name, resource in desired.resources.items():
        uri = remote_source(resource)
        if uri is None:
            resources[name] = resource
            continue
        facts = found.get(uri)
        if facts is None:
            table = uri.startswith("bq://")
            problems.append(
                Diagnostic(
                    f"resource `{name}`: source.{'bigquery' if table else 'gcs'} {uri} does not "
                    "exist or cannot be read",
                    resource.location,
                    hint=(
                        "create the table (a `request` JSON column) first"
                        if table
                        else "upload the JSONL there first"
                    )
                    + ", or check the credentials' access",
                )
            )
            continue
        past = (
            remote_problem(uri, rows=facts.num_rows)
            if isinstance(facts, RemoteTable)
            else remote_problem(uri, size=facts.size)
        )
        if past is not None:
            # Read in place, so never split into shards: Vertex would refuse the job.
            problems.append(
                Diagnostic(
                    f"resource `{name}`: source {past}",
                    resource.location,
                    hint="split it into several objects or tables, one resource each, or use "
                    "a local `source.file`, which apply splits into shards",
                )
            )
            continue
        updated = dataclasses.replace(resource, source=object_digest(facts))
        resources[name] = dataclasses.replace(updated, spec_hash=spec_hash(updated))
    return dataclasses.replace(desired, resources=resources), problems
