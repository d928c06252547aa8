"""What apply tells the user while it works: typed events sent to a Reporter (never `print`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class EventKind(enum.StrEnum):
    STEP = "step"
    """A step that changed the world finished (uploaded, created, cancelled, collected...)."""
    WARNING = "warning"
    """Something the user should know that did not stop the resource (e.g. reordered responses)."""
    FAILED = "failed"
    """A resource failed; the others go on."""
    PROGRESS = "progress"
    """A polling round: how many jobs are in which state."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    resource: str | None
    message: str
    counts: tuple[tuple[str, int], ...] = ()
    """For PROGRESS: (job state, number of jobs) pairs."""
    elapsed_seconds: float | None = None


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
