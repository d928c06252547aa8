"""The live world as reconciler sees it: plain values, no SDK types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.state.document import JobState


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


@dataclass(frozen=True, slots=True)
class Live:
    """A snapshot of the jobs (and, when read, the files) that exist now."""

    observed_at: datetime
    jobs: Mapping[str, LiveJob] = field(default_factory=dict)
    files: Mapping[str, LiveFile] = field(default_factory=dict)
    files_listed: bool = False
    """False when files were not read; the planner then treats every recorded file as unknown."""
