"""Desired state: validated manifests with their content hashes, ready for the planner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import SourceLocation
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.model import BatchJobManifest, Shards


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A local file referenced by a request part (`file_data: {path: ...}`); apply uploads it."""

    path: str
    """Relative to the project root."""
    sha256: str
    mime_type: str
    bytes: int


@dataclass(frozen=True, slots=True)
class SourceDigest:
    """What the planner needs to know of a source without reading it again."""

    sha256: str
    """Hex sha256 of the source content: the file's bytes, or canonical JSON of inline requests."""
    bytes: int
    request_count: int
    keys_sha256: str
    """Hex sha256 over the (key, request digest) pairs: equal iff the same keys carry the same
    requests, whatever the order. Inline requests: JSON of the sorted keys, then their 8-byte
    digests. JSONL files: the key count and the sum of the pairs' hashes (`file_keys_sha256`),
    which the streamed scan computes without a sorted key list."""
    key_digests: Mapping[str, str] = field(default_factory=dict)
    """Request key -> digest of its request (hex, 16 chars: sha256 of the request's canonical JSON,
    keys sorted, compact; camelCase and snake_case spellings are not unified). Inline requests
    without a key are keyed `request-1`, `request-2`, ... in order. Used to list changed keys and for
    incremental re-runs. May be empty for very large inputs when the caller asked not to keep it.
    For JSONL files it is a `SpilledDigests`: its length is known at once, the pairs are read from
    a temporary file on first use, so unchanged sources never hold them in memory."""
    max_output_tokens: int | None = None
    """Generate: the sum over requests of `generationConfig.maxOutputTokens` (the most output,
    thinking included, the job can be billed for); None when a request sets none, so only the
    model's limit bounds it. Embed: 0."""
    counted_input_tokens: int | None = None
    """Input tokens counted by the SDK's local tokenizer before planning (text only), when it
    runs offline for the model and the source is small enough; None: estimate from bytes."""


@dataclass(frozen=True, slots=True)
class DesiredResource:
    """One BatchJob manifest as the planner sees it."""

    name: str
    manifest: BatchJobManifest
    location: SourceLocation
    """Where `metadata.name` was declared."""
    source: SourceDigest
    media: tuple[MediaRef, ...]
    spec_hash: str
    """Hex sha256 over the replacing fields (model, task, config but its priority, source content,
    media content).
    Equal hashes mean the job need not be created again."""
    service_shards: Shards | None = None
    """The shard sizes the endpoint's own limits impose where they are below the manifest's
    defaults (Vertex: manifests/vertex_rules.vertex_shards); None: the manifest's. Not a field
    of the spec: the manifest, its hashes and its in-place fields stay as written."""

    @property
    def shards(self) -> Shards:
        """The shard sizes `plan` counts jobs by and `apply` splits the input by."""
        return self.service_shards or self.manifest.spec.shards

    def replacing_fields(self) -> dict[str, Any]:
        """The fields whose change makes a new job, as recorded in state and diffed in plans."""
        spec = self.manifest.spec
        fields: dict[str, Any] = {
            "model": spec.model,
            "task": spec.task.value,
            # Priority is changed in place (the service's update call), so it is not hashed.
            "config": spec.config.model_dump(mode="json", exclude_none=True, exclude={"priority"}),
            # Content, not path: moving an input file does not make a new job (DESIGN §5).
            "source": {
                "inline": spec.source.requests is not None,
                "sha256": self.source.sha256,
                "requests": self.source.request_count,
            },
            "media": {m.path: m.sha256 for m in self.media},
        }
        if is_bigquery(spec.output):
            # The job itself writes to a BigQuery output (results are not copied there
            # afterwards), so another table needs another job. Left out for other outputs, so
            # their spec hashes do not change.
            fields["destination"] = spec.output
        return fields

    def in_place_fields(self) -> dict[str, Any]:
        """Fields that change only the state and the results copy, never make a new job
        (priority also reaches a job still in progress, through the service's update call)."""
        spec = self.manifest.spec
        fields: dict[str, Any] = {
            "output": spec.output,
            "labels": dict(self.manifest.metadata.labels),
            # Unset optional policy fields are left out, so adding one to the format does not
            # show every existing resource as changed.
            "policy": spec.policy.model_dump(mode="json", exclude_none=True),
            "shards": spec.shards.model_dump(mode="json"),
        }
        # Left out when unset, as the policy fields are: records written before priority was an
        # in-place field then show no change.
        if spec.job_priority is not None:
            fields["priority"] = spec.job_priority
        return fields


@dataclass(frozen=True, slots=True)
class Desired:
    """Every desired resource by name, plus the manifests' combined hash (for saved plans)."""

    resources: Mapping[str, DesiredResource]
    manifests_sha256: str
