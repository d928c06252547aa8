"""The state document: what reconciler created, from what, and where the results went.

It is a public contract (a JSON file users commit to git, or a PostgreSQL row), so it is
versioned: `format_version` moves only with a migration in `state.migrations`. This module is
plain data (no I/O): the planner reads it, `state.codec` turns it into bytes and back.

Every model is frozen: change a record by building a new one (`model_copy(update=...)`,
`State.with_resource`), never by mutating a nested dict in place. The codec caches each record's
JSON form by identity, so an in-place edit of, say, `record.replacing` would not be saved.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

FORMAT_VERSION = 7


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobState(enum.StrEnum):
    """A batch job's state, without the service's `BATCH_STATE_`/`JOB_STATE_` prefix."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"
    """Recorded intent whose create call's outcome is not known (crash between call and save)."""

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_success(self) -> bool:
        return self is JobState.SUCCEEDED


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED})


class AttemptPurpose(enum.StrEnum):
    FULL = "full"
    """The whole source (or one shard of it)."""
    RETRY_FAILED = "retry_failed"
    """Only the requests whose previous results were errors."""
    INCREMENTAL = "incremental"
    """Only the requests that are new or changed since the previous results."""


class InputShard(_Doc):
    """One uploaded part of a sharded input (`spec.shards`): its own file, hash and size."""

    index: int
    """0-based shard number; the attempt's identity tag carries it as `.s<index>`."""
    sha256: str
    bytes: int
    request_count: int
    file_name: str | None = None
    """Service file name (`files/abc`) once uploaded; None before the upload finished."""


class InputRecord(_Doc):
    """An uploaded input file (or the inline payload's digest)."""

    sha256: str
    bytes: int
    request_count: int
    file_name: str | None = None
    """Service file name (`files/abc`) for file sources; None for inline sources."""
    uploaded_at: datetime | None = None
    expires_at: datetime | None = None
    shards: tuple[InputShard, ...] = ()
    """The parts of a sharded input, in order; empty when the input went up as one file."""

    @property
    def file_names(self) -> tuple[str, ...]:
        """Every uploaded service file name (the whole file, or each shard's)."""
        names = [s.file_name for s in self.shards if s.file_name]
        if not names and self.file_name:
            names = [self.file_name]
        return tuple(names)


class MediaUpload(_Doc):
    """A local media file (an image a request names by `fileData.path`) as uploaded for a job."""

    file_name: str
    """The service's name for it (`files/abc`; on Vertex its staged `gs://` object)."""
    uri: str
    """What the job's requests reference (`fileData.fileUri`)."""
    sha256: str
    """Of the local file's content: the same content is the same upload."""
    expires_at: datetime | None = None
    """When the service deletes it on its own (48 h after upload on the Developer API)."""
    deleted_at: datetime | None = None
    """When apply deleted it, once the job's results were collected and no job that may still
    run referenced it (`cleanup.inputs`)."""


class TokenUsage(_Doc):
    """Tokens a job's collected results report (`usageMetadata`), summed over its results."""

    prompt: int = 0
    """`promptTokenCount`: input tokens, cached ones included."""
    output: int = 0
    """`candidatesTokenCount`: response tokens."""
    thinking: int = 0
    """`thoughtsTokenCount`: thinking tokens (billed as output)."""
    cached: int = 0
    """`cachedContentTokenCount`: the part of `prompt` served from a cache (billed lower)."""
    tool_use_prompt: int = 0
    """`toolUsePromptTokenCount`: tokens of tool results fed back to the model."""
    responses: int = 0
    """Responses that carried `usageMetadata` (errors carry none)."""
    model: str | None = None
    """The model the tokens were billed on (the attempt's, else the manifest's when collected), so
    spend stays attributed after the manifest moves to another model; None: not recorded."""


class JobAttempt(_Doc):
    """One job created (or about to be created) for a resource."""

    number: int
    """1-based attempt number within the resource; part of the identity tag."""
    tag: str
    """Identity tag carried in the job's display_name (see live.tags)."""
    spec_hash: str
    purpose: AttemptPurpose = AttemptPurpose.FULL
    shard: int | None = None
    rerun: int = 0
    """0 for a shard's first run in this attempt; n for its n-th run alone after it ended badly.
    The newest rerun of each shard is the one the attempt's results come from."""
    request_count: int | None = None
    """Requests this job sends; None in states written before it was recorded."""
    job_name: str | None = None
    """`batches/...`; None while only the intent is recorded."""
    input_file: str | None = None
    state: JobState = JobState.UNKNOWN
    intent_at: datetime
    """When the intent to create was recorded, before the create call."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    output_file: str | None = None
    """`files/batch-...` for file jobs once the service reports it."""
    request_keys_file: str | None = None
    """For partial attempts (retry/incremental): which keys this job ran, stored beside the state."""
    model: str | None = None
    """The model this job runs on when it is not the manifest's (a replacement after a timeout,
    on `policy.fallback_model`); None: the manifest's model."""
    results_unusable: str | None = None
    """Why this job's results cannot be used although it succeeded (inline responses that came
    back without the keys that prove which request each answers). Such a job counts as FAILED:
    policy may resubmit it, and its results are never written."""
    endpoint: str | None = None
    """The endpoint kind this job was created on (`gemini`, `vertex`, ...); None: recorded before
    version 4, when only the Gemini Developer API existed. The embedded emulator and an
    emulator or proxy at a URL speak the Gemini API: they are `gemini`, with `base_url`."""
    base_url: str | None = None
    """Where the job was created when it was not Google's own host: `emulator` (the embedded
    emulator; its port changes every run) or the endpoint's URL (scheme, host, port and path:
    never credentials or a query). None: Google's host, or recorded before version 7."""

    @field_validator("base_url")
    @classmethod
    def _without_credentials(cls, value: str | None) -> str | None:
        """Whatever wrote the document (`state push`, a hand edit), the state keeps no user
        information, query or fragment of a URL: any of them may be a secret."""
        if value is None or not any(mark in value for mark in "@?#"):
            return value
        parts = urlsplit(value)
        return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))

    usage: TokenUsage | None = None
    """Tokens this job's results reported, summed when they were collected; None: not collected
    (or collected before version 4)."""
    cost_usd: float | None = None
    """What `usage` costs at the model's batch prices when collected; None: not collected or the
    model has no known price."""
    collected_at: datetime | None = None
    """When this job's results were collected (the time its `usage` and `cost_usd` were added)."""
    input_deleted_at: datetime | None = None
    """When apply deleted this job's input file (`input_file`) from the service, after the job
    ended and its results were collected (`cleanup.inputs`); None: not deleted by reconciler.
    A later job that needs the same input uploads it again."""
    output_deleted_at: datetime | None = None
    """When apply deleted this job's results file (`output_file`) after collecting it
    (`cleanup.results`)."""
    media: tuple[MediaUpload, ...] = ()
    """The uploaded media its requests reference, recorded with its intent, so they are
    deleted as its input is (`cleanup.inputs`) and never while a job that reads them may run."""
    output_kept: str | None = None
    """Why this job's results file is left at the service: it refuses to delete ids over 40
    characters (python-genai #1759), so no delete is sent, or it refused one. It expires there
    after 48 h; never tried again."""

    @property
    def is_intent(self) -> bool:
        """Only the intent is recorded: the create call may or may not have reached the service.

        Apply writes this record (state UNKNOWN, no job_name) *before* calling create, so after a
        crash the next run knows to look for a live job carrying `tag` and adopt it (DESIGN §7).
        """
        return self.job_name is None


class ResultsRecord(_Doc):
    """Results saved to durable storage."""

    location: str
    """A path under the project root, or a gs:// URL."""
    sha256: str
    bytes: int
    succeeded: int
    failed: int = 0
    collected_at: datetime
    from_attempts: tuple[int, ...] = ()
    """Attempt numbers whose results are merged into this copy."""


class ResourceRecord(_Doc):
    """Everything reconciler knows about one managed resource."""

    name: str
    spec_hash: str
    replacing: dict[str, Any] = Field(default_factory=dict)
    """The replacing fields as last applied (DesiredResource.replacing_fields), for diffs."""
    in_place: dict[str, Any] = Field(default_factory=dict)
    """The in-place fields as last applied (DesiredResource.in_place_fields), for diffs."""
    input: InputRecord | None = None
    attempts: tuple[JobAttempt, ...] = ()
    results: ResultsRecord | None = None
    key_digests_ref: str | None = None
    """Content address of the per-key digest index of the applied source (stored beside the state)."""

    @property
    def current_attempt(self) -> JobAttempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def current_number(self) -> int:
        """The newest attempt number (0 when nothing was ever attempted)."""
        return max((a.number for a in self.attempts), default=0)

    def attempt_group(self, number: int) -> tuple[JobAttempt, ...]:
        """The jobs attempt `number` currently stands on: per shard its newest rerun, by shard.

        Older runs of a shard that was resubmitted alone stay in `attempts` as history; they are
        not part of the group any more, so their end state no longer decides the attempt's.
        """
        newest: dict[int | None, JobAttempt] = {}
        for attempt in self.attempts:
            if attempt.number != number:
                continue
            kept = newest.get(attempt.shard)
            if kept is None or attempt.rerun >= kept.rerun:
                newest[attempt.shard] = attempt
        return tuple(sorted(newest.values(), key=lambda a: a.shard or 0))


class State(_Doc):
    """The whole state document."""

    format_version: int = FORMAT_VERSION
    lineage: str
    """A uuid fixed when the state is created; a plan or a push from another lineage is refused."""
    serial: int = 0
    """+1 on every write that changes content."""
    project: str | None = None
    """The project id (`project:` in reconciler.yaml) this state belongs to, once one was set. A
    state is never read by a project of another id: two repositories sharing one database must
    not plan against each other's records."""
    resources: dict[str, ResourceRecord] = Field(default_factory=dict)
    tombstones: dict[str, int] = Field(default_factory=dict)
    """Per resource name that was destroyed or forgotten, the highest attempt number it had.

    Its jobs stay at the service (cancelled, or settled with their results) and still carry its
    identity tags; those tags are never adopted again, and a resource of that name created later
    numbers its attempts after this one, so its tags cannot be mistaken for the old jobs'."""

    @property
    def identity(self) -> str:
        """What names this project in its jobs' identity tags: its project id, else its lineage."""
        return self.project or self.lineage

    def with_resource(self, record: ResourceRecord) -> State:
        """The state with `record` filed under its name (replacing any record of that name).

        O(1) in the other records besides one shallow dict copy: apply calls this once per
        step, so re-sorting every record here made a large apply quadratic. Order is the
        codec's business (it sorts names when encoding); equality ignores it.
        """
        resources = dict(self.resources)
        resources[record.name] = record
        return self.model_copy(update={"resources": resources})

    def without_resource(self, name: str) -> State:
        """The state without `name`'s record, keeping a tombstone of its attempts (if any)."""
        record = self.resources.get(name)
        resources = {k: v for k, v in self.resources.items() if k != name}
        update: dict[str, Any] = {"resources": resources}
        if record is not None and record.attempts:
            highest = max(record.current_number, self.tombstones.get(name, 0))
            update["tombstones"] = dict(sorted({**self.tombstones, name: highest}.items()))
        return self.model_copy(update=update)

    def with_resource_renamed(self, old: str, new: str) -> State:
        """The same records with `old` now known as `new` (`reconciler state mv`).

        Raises:
            KeyError: `old` is not in the state, or `new` already is.
        """
        if old not in self.resources:
            raise KeyError(old)
        if new in self.resources:
            raise KeyError(new)
        record = self.resources[old].model_copy(update={"name": new})
        return self.without_resource(old).with_resource(record)

    def same_content(self, other: State) -> bool:
        """Whether the two documents differ in nothing but their serial.

        Writes bump the serial only when this is false, so re-saving an unchanged state (apply
        saves after every step) does not make saved plans look stale.
        """
        return self.model_copy(update={"serial": other.serial}) == other
