"""The manifest format (`apiVersion: reconciler/v1`, `kind: BatchJob`) as pydantic models.

Field docstrings are written for users: they become the JSON Schema descriptions editors show
(read when the schema is generated: reconciler/field_docs.py).
"""

from __future__ import annotations

import enum
import math
import re
from pathlib import PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reconciler.manifests.bigquery_uri import is_bigquery, table_problem

RESOURCE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
GCS_URL_PATTERN = re.compile(
    r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(?P<prefix>[^\s]*)$"
)
"""`gs://bucket/prefix/`; bucket names as Cloud Storage allows them (lower case, 3..222 chars)."""
SIZE_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$"
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}
MAX_INPUT_FILE_BYTES = 2 * 10**9
"""The Files API's per-file limit: a batch input file (one shard) may not be larger."""


def parse_size(value: int | str) -> int:
    """`1GiB` -> 1073741824; integers are bytes. Raises ValueError on anything else."""
    if isinstance(value, int):
        return value
    match = re.match(SIZE_PATTERN, value)
    if match is None:
        raise ValueError(f"{value!r} is not a size (use bytes, or e.g. 500MiB, 1GiB, 1.5GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def _relative_path_problem(value: str) -> str | None:
    """Why `value` cannot be a project-relative path, or None. Symlinks are checked at load time.

    On text, as pathlib would answer (`PurePosixPath(value).is_absolute()`, `..` among
    `PurePosixPath(...).parts`): three path objects per path field were a tenth of loading a
    large project. Only a value that could carry a Windows drive or share is given to
    `PureWindowsPath`."""
    if not value.strip():
        return "path is empty"
    if value.startswith(("/", "~")) or (_may_have_drive(value) and _windows_absolute(value)):
        return f"`{value}` is absolute; paths are relative to the project root"
    if ".." in value.replace("\\", "/").split("/"):
        return f"`{value}` leaves the project root (`..`); paths must stay inside it"
    return None


def _may_have_drive(value: str) -> bool:
    """Whether `value` could start with a Windows drive (`C:`) or share (`\\\\server\\share`);
    without one, no Windows path is absolute."""
    return value[1:2] == ":" or (value[:1] in ("\\", "/") and value[1:2] in ("\\", "/"))


def _windows_absolute(value: str) -> bool:
    return PureWindowsPath(value).is_absolute()


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    """Which requests run again when the input changes."""

    CHANGED = "changed"
    ALL = "all"


class Metadata(_Strict):
    """Identity and labels of the resource."""

    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN, max_length=63)]
    """Unique name of this batch job resource: its identity in the state. Lower-case letters,
    digits and '-', at most 63 characters. Renaming a resource is `reconciler state mv`."""

    @field_validator("name", mode="before")
    @classmethod
    def _friendly_name(cls, value: object) -> object:
        if isinstance(value, str) and (
            len(value) > 63 or re.match(RESOURCE_NAME_PATTERN, value) is None
        ):
            raise ValueError(
                f"{value!r} is not a valid name: use lower-case letters, digits and '-', starting and "
                "ending with a letter or digit, at most 63 characters"
            )
        return value

    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels (team, owner, purpose). Changing them never re-runs a job."""


class Source(_Strict):
    """Where the requests come from: exactly one of `file`, `requests` or (Vertex) `gcs` or
    `bigquery`."""

    file: str | None = None
    """Path (relative to the project root) of a JSONL input: one `{"key": ..., "request": {...}}`
    per line, `request` in the REST shape of a GenerateContentRequest (or EmbedContentRequest for
    `task: embed`)."""

    requests: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None
    """Inline requests for small jobs (under 20 MB in all): each a REST GenerateContentRequest
    (or EmbedContentRequest), or `{"key": ..., "request": {...}}` to name it. Unnamed requests
    are keyed `request-1`, `request-2`, ... in order. A part may name a local file with
    `fileData: {path: images/cat.jpg}`: apply uploads it and substitutes its URI."""

    gcs: (
        Annotated[str, Field(pattern=r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/\S*[^/\s]$")] | None
    ) = None
    """`endpoint: vertex` only: a JSONL object in Cloud Storage (`gs://bucket/path.jsonl`), read
    by Vertex in place, never copied. A change is seen from the object's generation and
    checksums when reconciler plans; its requests are counted by Vertex, not by `plan`."""

    bigquery: str | None = None
    """`endpoint: vertex` only: a BigQuery table (`bq://project.dataset.table`) Vertex reads in
    place: a `request` column holding each GenerateContentRequest as JSON; its other columns
    are copied to the output. A change is seen from the table's metadata (last modified time,
    rows, bytes, etag) when reconciler plans, not from its content."""

    @field_validator("bigquery")
    @classmethod
    def _table_uri(cls, value: str | None) -> str | None:
        problem = None if value is None else table_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("file")
    @classmethod
    def _relative_file(cls, value: str | None) -> str | None:
        problem = None if value is None else _relative_path_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [v for v in (self.file, self.requests, self.gcs, self.bigquery) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "source needs exactly one of `file` or `requests` (or `gcs` or `bigquery` on "
                "Vertex)"
            )
        return self


Priority = Annotated[int, Field(strict=True, ge=-(2**63), lt=2**63)]
"""A batch priority: an int64, and an integer in the YAML (`true` or `"5"` is refused, not read
as 1 or 5)."""


class JobConfig(_Strict):
    """Options sent to the service with the job (the SDK's CreateBatchJobConfig and the batch's
    own fields). Changing any of them makes a new job, except `priority`."""

    display_name: Annotated[str, Field(max_length=100)] | None = None
    """Human-readable job name shown by the service; reconciler appends its identity tag."""

    priority: Priority | None = None
    """The older spelling of `spec.priority` (same meaning, also changed in place); write
    `spec.priority` instead. Setting both is an error."""


DURATION_PATTERN = r"^([1-9][0-9]*)(s|m|h|d)$"
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: str) -> int:
    """`90s`, `30m`, `6h`, `2d` in seconds (the value already matched DURATION_PATTERN)."""
    return int(value[:-1]) * _DURATION_SECONDS[value[-1]]


class Timeout(_Strict):
    """How long a job may wait at the service before apply gives up on it and replaces it."""

    pending: Annotated[str, Field(pattern=DURATION_PATTERN)] | None = None
    """Longest a job may sit PENDING (queued, not started), e.g. `6h`: the service is known to
    hold jobs for a day and then expire them with no results."""

    total: Annotated[str, Field(pattern=DURATION_PATTERN)] | None = None
    """Longest a job may take from its create to its end, e.g. `36h`."""


class Policy(_Strict):
    """What apply does after failures and input changes. Changing it never re-runs a job."""

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

    timeout: Timeout | None = None
    """When a job past these limits is cancelled and replaced by a new attempt (counted against
    `max_attempts`); unset: wait as long as the service takes."""

    fallback_model: Annotated[str, Field(min_length=1)] | None = None
    """The model a job replaced after a timeout runs on (e.g. a model with more capacity);
    unset: the same model."""


class Shards(_Strict):
    """Limits above which one input becomes several jobs (each within the service's limits)."""

    max_requests: Annotated[int, Field(ge=1)] = 100_000
    """Split an input with more requests than this into several jobs."""

    max_bytes: Annotated[int, Field(ge=1)] | Annotated[str, Field(pattern=SIZE_PATTERN)] = "1GiB"
    """Split an input larger than this (bytes, or a size such as `500MiB`, `1GiB`) into several
    jobs. At most 2 GB, the Files API's limit for one input file."""

    @field_validator("max_bytes")
    @classmethod
    def _within_file_limit(cls, value: int | str) -> int | str:
        if parse_size(value) > MAX_INPUT_FILE_BYTES:
            raise ValueError(
                "at most 2GB: one shard is one uploaded file, and the Files API takes up to 2 GB"
            )
        return value

    def max_bytes_value(self) -> int:
        """`max_bytes` in bytes."""
        return parse_size(self.max_bytes)

    def jobs_for(self, requests: int, n_bytes: int) -> int:
        """How many jobs `requests` requests of `n_bytes` split into under these limits (0 for
        no requests)."""
        if requests <= 0:
            return 0
        try:
            max_bytes = self.max_bytes_value()
        except ValueError:
            # Validation owns this error; an unparseable size means "do not split on size".
            max_bytes = 0
        by_bytes = math.ceil(n_bytes / max_bytes) if max_bytes > 0 else 1
        return max(1, math.ceil(requests / self.max_requests), by_bytes)


class BatchJobSpec(_Strict):
    """What the job does and where its results go."""

    model: Annotated[str, Field(min_length=1)]
    """Model id, e.g. `gemini-3-flash-preview`, `gemini-embedding-001`, `gemini-2.5-flash-image`."""

    task: Task = Task.GENERATE
    """`generate` (batchGenerateContent) or `embed` (asyncBatchEmbedContent)."""

    source: Source
    """Where the requests come from: exactly one of `file` or `requests` (or, on Vertex, `gcs` or
    `bigquery`)."""

    config: JobConfig = Field(default_factory=JobConfig)
    """Options passed to the service with the job (e.g. `display_name`). Changing them makes a new job."""

    priority: Priority | None = None
    """Batch priority (int64): the service processes jobs with a higher value first; negative
    values are allowed; unset means the service default, 0. Changed in place: a job still
    pending or running gets the new value through the service's update call (no new job), and
    a job that has ended keeps its own (only the state records the new value)."""

    output: Annotated[str, Field(min_length=1)]
    """Where results go: a path under the project root (a `.jsonl` file, or a folder ending in `/`
    for image outputs), or `gs://bucket/prefix/`. Local outputs may not leave the project root.
    With `endpoint: vertex`, also a BigQuery table (`bq://project.dataset.table`) the job writes
    its rows to (`request`, `response`, `status`, `processed_time` and the source's other
    columns); the results stay there and reconciler never drops the table."""

    policy: Policy = Field(default_factory=Policy)
    """What apply does after failures and input changes."""

    shards: Shards = Field(default_factory=Shards)
    """Limits above which one input becomes several jobs."""

    @model_validator(mode="after")
    def _one_priority(self) -> BatchJobSpec:
        if self.priority is not None and self.config.priority is not None:
            raise ValueError(
                "priority is set twice: keep `spec.priority` and remove `spec.config.priority`"
            )
        return self

    @property
    def job_priority(self) -> int | None:
        """The priority the job runs with (`spec.priority`, else the older
        `spec.config.priority`); None when neither is set."""
        return self.priority if self.priority is not None else self.config.priority

    @field_validator("model")
    @classmethod
    def _bare_model_id(cls, value: str) -> str:
        if value != value.strip() or "/" in value.removeprefix("models/"):
            raise ValueError(f"{value!r} is not a model id (e.g. `gemini-3-flash-preview`)")
        return value

    @field_validator("output")
    @classmethod
    def _output_shape(cls, value: str) -> str:
        if value.startswith("gs://"):
            if GCS_URL_PATTERN.match(value) is None:
                raise ValueError(
                    f"`{value}` is not a Cloud Storage URL of the form gs://bucket/prefix/"
                )
            return value
        if is_bigquery(value):
            problem = table_problem(value)
            if problem:
                raise ValueError(problem)
            return value
        if "://" in value:
            raise ValueError(
                f"`{value}`: outputs are a local path, a gs:// URL or (Vertex) a bq:// table"
            )
        problem = _relative_path_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class BatchJobManifest(_Strict):
    """A Gemini Batch API job, declared."""

    apiVersion: Literal["reconciler/v1"]  # the manifest format spells it so
    """Always `reconciler/v1`."""

    kind: Literal["BatchJob"]
    """Always `BatchJob`."""

    metadata: Metadata
    """Identity (`name`) and `labels`."""

    spec: BatchJobSpec
    """What the job does and where its results go."""
