"""Emulator settings: one frozen value, plus a thread-safe holder that changes it at run time.

Settings are process state, not stored on disk: everything that must survive a restart (a job's
duration, its forced end state, the quirks it was created under) is copied onto the job's row
when the job is created, so changing a setting never rewrites the history of existing jobs.
"""

from __future__ import annotations

import dataclasses
import threading
import typing
from dataclasses import dataclass
from typing import Any

HOURS_48 = 48 * 3600.0
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """Behaviour switches of the emulator. Every fault is off by default; every strictness of
    the real service is on by default, and its lenient variant is a switch here."""

    api_key: str | None = None
    """Accept only this exact `x-goog-api-key`; None accepts any non-empty key."""
    job_seconds: float = 2.0
    """Real seconds from create to SUCCEEDED."""
    pending_fraction: float = 0.3
    """Share of `job_seconds` a job spends PENDING before RUNNING."""
    pending_hold_seconds: float = 0.0
    """Real seconds a new job sits PENDING before its `job_seconds` start: the service's jobs
    that wait in its queue for hours, then expire (python-genai #1482, #2221)."""
    time_scale: float = 1.0
    """Emulated seconds per real second for the 48 h lifetimes (file expiry, job expiry)."""
    file_ttl_seconds: float = HOURS_48
    """Emulated lifetime of a file after creation (the service deletes files after 48 h)."""
    job_ttl_seconds: float = HOURS_48
    """Emulated time after which a job still pending/running becomes EXPIRED."""
    max_file_bytes: int = 2 * GIB
    """Per-file size limit of the Files API (2 GB)."""
    storage_quota_bytes: int = 20 * GIB
    """Total bytes of live files (20 GB per project)."""
    vertex_max_requests: int = 200_000
    """Vertex: requests (input lines or source rows) in one batch prediction job; a job past it
    ends FAILED (Google's Gemini batch page, "Quotas and limits": 200,000)."""
    vertex_max_input_bytes: int = 1_000_000_000
    """Vertex: bytes of one Cloud Storage input file; create answers 400 past it (the same
    page: 1 GB)."""
    max_concurrent_jobs: int = 100
    """Pending + running jobs allowed; create answers 429 RESOURCE_EXHAUSTED past it."""
    max_enqueued_tokens: int = 0
    """Per model: estimated input tokens of pending + running jobs allowed (the service's
    "enqueued tokens" quota, e.g. 3 M for gemini-2.5-flash at tier 1); create answers 429
    RESOURCE_EXHAUSTED past it. Estimated as the input's bytes / 4, rounded up (a file job's
    input file, an inline job's requests as compact JSON), as reconciler estimates them.
    0: no limit (the tier of an emulated project is unknown)."""
    page_size: int = 10
    """Default list page size when the client sends none."""
    seed: int = 0
    """Seed of the fault RNG: the same seed and call sequence give the same faults, per call and
    inside each created job (its failed requests, its shuffled responses)."""
    rate_429: float = 0.0
    """Probability that a call answers 429 RESOURCE_EXHAUSTED."""
    rate_500: float = 0.0
    """Probability that a call answers 500 INTERNAL."""
    rate_503: float = 0.0
    """Probability that a call answers 503 UNAVAILABLE."""
    drop_rate: float = 0.0
    """Probability that a call's connection is closed without any response."""
    latency_seconds: float = 0.0
    """Delay added before answering every call."""
    request_error_rate: float = 0.0
    """Share of requests inside a job that end with a per-request error (a hash of the key and
    the job's fault seed, drawn from `seed` in creation order)."""
    fail_next_jobs: int = 0
    """The next N created jobs end FAILED instead of SUCCEEDED."""
    expire_next_jobs: int = 0
    """The next N created jobs end EXPIRED instead of SUCCEEDED."""
    results_delay_seconds: float = 0.0
    """Quirk: a results file answers 404 on download for this long after SUCCEEDED."""
    shuffle_inline_responses: bool = False
    """Quirk (python-genai #1909, #1886): inline responses reordered and without `metadata`."""
    undeletable_result_files: bool = True
    """As the service (python-genai #1759): deleting a `files/batch-*` results file (an id over
    40 characters) answers 400; False names results files with ids of 40 characters
    (`batch-` + the job id's first 34), which can be deleted."""
    retry_delay_seconds: float = 1.0
    """The `RetryInfo.retryDelay` of an injected 429."""
    media_processing_seconds: float = 1.0
    """Real seconds an uploaded audio or video file stays PROCESSING before it is ACTIVE."""
    accept_unknown_fields: bool = False
    """Lenient: ignore unknown request fields instead of answering 400 with field violations."""
    accept_unknown_models: bool = False
    """Lenient: batch routes accept any model name and method instead of answering 404."""
    accept_any_mime_type: bool = False
    """Lenient: accept any MIME type on upload instead of 400 "Unsupported MIME type"."""
    download_uploaded_files: bool = False
    """Lenient: let files created by upload be downloaded (the service serves only generated
    files)."""

    storage_url: str | None = None
    """Vertex routes: the Cloud Storage (emulator) endpoint jobs read inputs from and write
    predictions to; None reads `STORAGE_EMULATOR_HOST` from the environment."""
    bigquery_url: str | None = None
    """Vertex routes: the BigQuery (emulator) endpoint jobs read source tables from and write
    result tables to; None reads `BIGQUERY_EMULATOR_HOST` from the environment."""

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "rate_503", "drop_rate", "request_error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        for name in (
            "job_seconds",
            "pending_hold_seconds",
            "latency_seconds",
            "results_delay_seconds",
            "retry_delay_seconds",
            "media_processing_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if not 0.0 <= self.pending_fraction <= 1.0:
            raise ValueError("pending_fraction must be within [0, 1]")
        for name in (
            "max_concurrent_jobs",
            "max_enqueued_tokens",
            "page_size",
            "fail_next_jobs",
            "expire_next_jobs",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON view (for GET /_emulator/settings); the API key is never echoed."""
        data = dataclasses.asdict(self)
        data["api_key"] = None if self.api_key is None else "<set>"
        return data


_TYPES: dict[str, Any] = typing.get_type_hints(EmulatorSettings)
SETTING_NAMES: frozenset[str] = frozenset(f.name for f in dataclasses.fields(EmulatorSettings))


def coerce_changes(changes: dict[str, object]) -> dict[str, Any]:
    """Validate a partial settings mapping from JSON (admin endpoint) into typed values.

    Raises:
        ValueError: an unknown name or a value of the wrong type.
    """
    typed: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in SETTING_NAMES:
            raise ValueError(f"unknown setting {name!r}; known: {', '.join(sorted(SETTING_NAMES))}")
        expected = _TYPES[name]
        if expected is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a boolean")
            typed[name] = value
        elif expected is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer")
            typed[name] = value
        elif expected is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            typed[name] = float(value)
        else:  # str | None
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or null")
            typed[name] = value or None
    return typed


class SettingsHolder:
    """The current settings of one running emulator; readers get an immutable snapshot."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self.seed_generation = 0
        """Bumped whenever `seed` is set (even to its current value): the fault RNG restarts."""

    def get(self) -> EmulatorSettings:
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> EmulatorSettings:
        """Apply a partial change atomically; raises ValueError/TypeError on bad values."""
        with self._lock:
            self._settings = dataclasses.replace(self._settings, **changes)
            if "seed" in changes:
                self.seed_generation += 1
            return self._settings

    def take_forced_end(self) -> str | None:
        """Consume one "force the next job" ticket: FAILED first, then EXPIRED."""
        with self._lock:
            current = self._settings
            if current.fail_next_jobs > 0:
                self._settings = dataclasses.replace(
                    current, fail_next_jobs=current.fail_next_jobs - 1
                )
                return "FAILED"
            if current.expire_next_jobs > 0:
                self._settings = dataclasses.replace(
                    current, expire_next_jobs=current.expire_next_jobs - 1
                )
                return "EXPIRED"
            return None
