"""What apply tells the user while it works: typed events sent to a Reporter (never `print`).

Besides the lines of what changed (STEP, WARNING, FAILED) and the polling rounds (PROGRESS),
each resource moves through phases (PHASE): uploading, creating, pending, running, downloading,
collected. A phase event may carry how many bytes of a transfer are done and the service's
request counts of the resource's jobs, so a live view can draw one row per resource.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from reconciler.live.snapshot import BatchStats


class EventKind(enum.StrEnum):
    STEP = "step"
    """A step that changed the world finished (uploaded, created, cancelled, collected...)."""
    WARNING = "warning"
    """Something the user should know that did not stop the resource (e.g. reordered responses)."""
    FAILED = "failed"
    """A resource failed; the others go on."""
    PROGRESS = "progress"
    """A polling round: how many jobs are in which state."""
    PHASE = "phase"
    """A resource entered a phase, or its transfer or its jobs moved on within one."""


class Phase(enum.StrEnum):
    """Where a resource is in its run, in the order a new job goes through them."""

    PREPARING = "preparing"
    """Its input is being written out for upload (split into shards, media references)."""
    UPLOADING = "uploading"
    CREATING = "creating"
    PENDING = "pending"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    COLLECTED = "collected"
    """Results are written and recorded: the resource is settled."""
    ENDED = "ended"
    """Its jobs ended without results to collect (cancelled, failed, expired)."""

    @property
    def is_settled(self) -> bool:
        return self in (Phase.COLLECTED, Phase.ENDED)


@dataclass(frozen=True, slots=True)
class Transfer:
    """Bytes of an upload or download so far, of `total` when known."""

    done: int
    total: int | None


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    resource: str | None
    message: str
    counts: tuple[tuple[str, int], ...] = ()
    """For PROGRESS: (job state, number of jobs) pairs."""
    elapsed_seconds: float | None = None
    phase: Phase | None = None
    """For PHASE: the phase the resource is in."""
    transfer: Transfer | None = None
    """For PHASE uploading/downloading: the bytes moved so far of the file `message` names."""
    stats: BatchStats | None = None
    """For PHASE pending/running: the service's request counts over the resource's jobs."""


class Reporter(Protocol):
    """Where events go. The CLI picks a rich, plain-line, JSON-lines or silent implementation."""

    def emit(self, event: Event) -> None: ...


class CollectingReporter:
    """Keeps every event; for tests and for summaries at the end of a run."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def messages(self, kind: EventKind | None = None) -> list[str]:
        return [e.message for e in self.events if kind is None or e.kind is kind]

    def phases(self, resource: str) -> list[Phase]:
        """The phases `resource` went through, each once per entry (transfer updates folded)."""
        seen: list[Phase] = []
        for event in self.events:
            if event.kind is not EventKind.PHASE or event.resource != resource:
                continue
            if event.phase is not None and (not seen or seen[-1] is not event.phase):
                seen.append(event.phase)
        return seen
