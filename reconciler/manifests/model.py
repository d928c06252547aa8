"""The manifest format (`apiVersion: reconciler/v1`, `kind: BatchJob`) as pydantic models.

Field docstrings are written for users: they become the JSON Schema descriptions editors show.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RESOURCE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Task(enum.StrEnum):
    """What the job asks of the model."""

    GENERATE = "generate"
    EMBED = "embed"


class EndState(enum.StrEnum):
    """Job end states a policy can react to."""

    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class Rerun(enum.StrEnum):
    CHANGED = "changed"
    ALL = "all"


class Metadata(_Strict):
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN, max_length=63)]
    """Unique name of this batch job resource: its identity in the state. Lower-case letters,
    digits and '-', at most 63 characters. Renaming a resource is `reconciler state mv`."""

    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels (team, owner, purpose). Changing them never re-runs a job."""


class Source(_Strict):
    file: str | None = None
    """Path (relative to the project root) of a JSONL input: one `{"key": ..., "request": {...}}`
    per line, `request` in the REST shape of a GenerateContentRequest (or EmbedContentRequest for
    `task: embed`)."""

    requests: list[dict[str, Any]] | None = None
    """Inline requests for small jobs (under 20 MB in all): each a REST GenerateContentRequest
    (or EmbedContentRequest), or `{"key": ..., "request": {...}}` to name it."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if (self.file is None) == (self.requests is None):
            raise ValueError("source needs exactly one of `file` or `requests`")
        return self


class JobConfig(_Strict):
    model_config = ConfigDict(frozen=True, extra="allow", use_attribute_docstrings=True)

    display_name: str | None = None
    """Human-readable job name shown by the service; reconciler appends its identity tag."""


class Policy(_Strict):
    resubmit: list[EndState] = Field(default_factory=lambda: [EndState.FAILED, EndState.EXPIRED])
    """End states after which the next apply creates the job again (self-healing)."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    """How many jobs at most apply creates for one version of this resource."""

    retry_failed_requests: Annotated[int, Field(ge=0, le=10)] = 0
    """How many follow-up jobs may re-run only the requests whose results were errors; their
    results are merged by key into the same output."""

    rerun: Rerun = Rerun.CHANGED
    """`changed`: when the input changes, only new or changed requests run and unchanged ones keep
    their previous results. `all`: every request runs again."""


class Shards(_Strict):
    max_requests: Annotated[int, Field(ge=1)] = 100_000
    """Split an input with more requests than this into several jobs."""

    max_bytes: Annotated[int | str, Field()] = "1GiB"
    """Split an input larger than this (bytes, or a size such as `500MiB`, `1GiB`) into several jobs."""


class BatchJobSpec(_Strict):
    model: Annotated[str, Field(min_length=1)]
    """Model id, e.g. `gemini-3-flash-preview`, `gemini-embedding-001`, `gemini-2.5-flash-image`."""

    task: Task = Task.GENERATE
    """`generate` (batchGenerateContent) or `embed` (asyncBatchEmbedContent)."""

    source: Source
    """Where the requests come from: exactly one of `file` or `requests`."""

    config: JobConfig = Field(default_factory=JobConfig)
    """Options passed to the service with the job (e.g. `display_name`). Changing them makes a new job."""

    output: Annotated[str, Field(min_length=1)]
    """Where results go: a path under the project root (a `.jsonl` file, or a folder ending in `/`
    for image outputs), or `gs://bucket/prefix/`."""

    policy: Policy = Field(default_factory=Policy)
    """What apply does after failures and input changes."""

    shards: Shards = Field(default_factory=Shards)
    """Limits above which one input becomes several jobs."""


class BatchJobManifest(_Strict):
    """A Gemini Batch API job, declared."""

    apiVersion: Literal["reconciler/v1"]  # noqa: N815 - the manifest's own spelling
    """Always `reconciler/v1`."""

    kind: Literal["BatchJob"]
    """Always `BatchJob`."""

    metadata: Metadata
    spec: BatchJobSpec
