"""The live world as reconciler sees it: plain values, no SDK types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from reconciler.state.document import JobState


@dataclass(frozen=True, slots=True)
class LiveModel:
    """A model as the service describes it (`models.get`)."""

    name: str
    """`models/...`"""
    supported_methods: tuple[str, ...]
    """`supportedGenerationMethods`, e.g. `batchGenerateContent`, `asyncBatchEmbedContent`."""
    input_token_limit: int | None = None
    output_token_limit: int | None = None


@dataclass(frozen=True, slots=True)
class BatchStats:
    """The service's request counts of a job (`batchStats`), summable over a resource's jobs."""

    total: int = 0
    """`requestCount`"""
    succeeded: int = 0
    """`successfulRequestCount`"""
    failed: int = 0
    """`failedRequestCount`"""

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def __add__(self, other: BatchStats) -> BatchStats:
        return BatchStats(
            self.total + other.total,
            self.succeeded + other.succeeded,
            self.failed + other.failed,
        )


@dataclass(frozen=True, slots=True)
class LiveJob:
    """A batch job that exists at the service."""

    name: str
    """`batches/...`"""
    display_name: str | None
    state: JobState
    model: str | None
    create_time: datetime | None
    update_time: datetime | None = None
    end_time: datetime | None = None
    output_file: str | None = None
    """`files/batch-...` when the job wrote its results to a file."""
    has_inline_output: bool = False
    stats: BatchStats | None = None
    """The request counts the service reported, when it did (the Developer API's `batchStats`)."""


@dataclass(frozen=True, slots=True)
class LiveFile:
    """A file in the Files API."""

    name: str
    """`files/...`"""
    display_name: str | None
    size_bytes: int
    sha256_b64: str | None
    state: str
    """ACTIVE, PROCESSING or FAILED."""
    expiration_time: datetime | None
    source: str | None = None
    """UPLOADED or GENERATED."""
    uri: str | None = None
    create_time: datetime | None = None
    download_uri: str | None = None
    """Set only for generated files (batch results): the SDK downloads only those."""


@dataclass(frozen=True, slots=True)
class Live:
    """A snapshot of the jobs (and, when read, the files) that exist now."""

    observed_at: datetime
    jobs: Mapping[str, LiveJob] = field(default_factory=dict)
    files: Mapping[str, LiveFile] = field(default_factory=dict)
    files_listed: bool = False
    """False when files were not read; the planner then treats every recorded file as unknown."""
    endpoint: str | None = None
    """The endpoint kind these jobs were read from (`gemini`, `vertex`); jobs recorded on another
    kind cannot appear here. None: not said (the planner then assumes the recorded kind)."""


JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"


@dataclass(frozen=True, slots=True)
class InlineError:
    """A per-request failure inside a job: a google.rpc.Status (gRPC code, not HTTP)."""

    code: int | None
    message: str | None


@dataclass(frozen=True, slots=True)
class InlineResult:
    """One inline response of a finished job, in the order the service returned it.

    Exactly one of `response` and `error` is set (both None only if the service sent neither).
    """

    index: int
    """Position in the service's answer; the only link to a request when `key` is None."""
    key: str | None
    """The `key` echoed in the response metadata, when the request carried one. Inline embedding
    requests cannot carry metadata through the SDK, so theirs are matched by position."""
    response: JsonObject | None
    """The GenerateContentResponse (or embedding response) in its REST shape: camelCase keys."""
    error: InlineError | None = None
