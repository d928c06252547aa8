"""`apply --format json` and `destroy --format json`: one JSON object per line for each step.

Terraform's machine-readable UI (`-json`) is the model: every line has `@level`, `@message`,
`@timestamp` and a `type`, plus typed fields of its type. A run writes a `version` line, one
`planned_change` per change and a `change_summary`, then its events as they happen (`step`,
`phase`, `progress`, `warning`, `failed`), and last an `outcome`. The lines are pydantic models,
so the published JSON Schema (schemas/events.schema.json) is generated from this module and a
test keeps the two equal. Fields are only ever added; `EVENTS_VERSION` moves when one changes
meaning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from reconciler import __version__
from reconciler.apply.events import Event, EventKind, Phase
from reconciler.clock import Clock
from reconciler.plan.actions import Plan

EVENTS_VERSION = 1
"""The version of the line format; consumers check it in the `version` line."""

SCHEMA_ID = "https://reconciler.dev/schemas/events.schema.json"

Level = Literal["info", "warn", "error"]


class _Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    level: Level = Field(alias="@level")
    message: str = Field(alias="@message")
    timestamp: str = Field(alias="@timestamp")
    """UTC, ISO 8601 with microseconds: `2026-01-01T12:00:03.123456Z`."""


class VersionLine(_Line):
    """First line of every run: which format the lines follow."""

    type: Literal["version"] = "version"
    reconciler: str
    events_version: int


class PlannedChangeLine(_Line):
    """One change the run is about to make (the plan's actions that change something)."""

    type: Literal["planned_change"] = "planned_change"
    resource: str
    action: str
    """The action kind: create, replace, cancel, collect, ..."""
    reason: str


class ChangeSummaryLine(_Line):
    """The plan's totals, before anything runs."""

    type: Literal["change_summary"] = "change_summary"
    operation: Literal["apply", "destroy"]
    counts: dict[str, int]
    """Actions per kind (every kind, zeros included)."""
    jobs: int
    requests: int
    estimated_cost_usd: float


class StepLine(_Line):
    """A step that changed the world (uploaded, created, cancelled, collected...)."""

    type: Literal["step"] = "step"
    resource: str | None


class WarningLine(_Line):
    """Something to know that did not stop the resource."""

    type: Literal["warning"] = "warning"
    resource: str | None


class FailedLine(_Line):
    """A resource failed; the others go on."""

    type: Literal["failed"] = "failed"
    resource: str | None


class ProgressLine(_Line):
    """A polling round: this project's jobs by state."""

    type: Literal["progress"] = "progress"
    jobs: dict[str, int]
    elapsed_seconds: float | None


class PhaseLine(_Line):
    """A resource entered a phase, or its transfer or its jobs moved on within one."""

    type: Literal["phase"] = "phase"
    resource: str
    phase: Phase
    file: str | None = None
    """For uploading and downloading: the file moving."""
    bytes_done: int | None = None
    bytes_total: int | None = None
    requests_total: int | None = None
    """For pending and running: the service's request counts over the resource's jobs."""
    requests_succeeded: int | None = None
    requests_failed: int | None = None


class OutcomeLine(_Line):
    """Last line of a run."""

    type: Literal["outcome"] = "outcome"
    status: Literal["complete", "failed", "interrupted"]
    failed: list[str] = Field(default_factory=list)
    """Resources that failed."""
    unsettled: list[str] = Field(default_factory=list)
    """Resources whose jobs still run (timeout, --no-wait, interrupted)."""
    waiting: list[str] = Field(default_factory=list)
    """Resources whose jobs wait for capacity."""


EventLine = Annotated[
    VersionLine
    | PlannedChangeLine
    | ChangeSummaryLine
    | StepLine
    | WarningLine
    | FailedLine
    | ProgressLine
    | PhaseLine
    | OutcomeLine,
    Field(discriminator="type"),
]


def events_json_schema() -> dict[str, Any]:
    """The JSON Schema every line validates against (one object per line)."""
    schema = TypeAdapter(EventLine).json_schema(mode="serialization", by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "reconciler apply/destroy --format json: one line",
        **schema,
    }


def events_schema_text() -> str:
    """The schema as the text of schemas/events.schema.json."""
    return json.dumps(events_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class JsonReporter:
    """Writes each event as one JSON line to `stream` (stdout), flushed at once."""

    def __init__(self, stream: TextIO, clock: Clock) -> None:
        self._stream = stream
        self._clock = clock

    def _stamp(self) -> str:
        return self._clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def write(self, line: BaseModel) -> None:
        self._stream.write(line.model_dump_json(by_alias=True) + "\n")
        self._stream.flush()

    def begin(self, plan: Plan, operation: Literal["apply", "destroy"]) -> None:
        """The version line, the planned changes and their summary."""
        at = self._stamp()
        self.write(
            VersionLine(
                level="info",
                message=f"reconciler {__version__}",
                timestamp=at,
                reconciler=__version__,
                events_version=EVENTS_VERSION,
            )
        )
        for action in plan.actions:
            if action.kind.is_change:
                self.write(
                    PlannedChangeLine(
                        level="info",
                        message=f"{action.resource}: plan to {action.kind.value}",
                        timestamp=at,
                        resource=action.resource,
                        action=action.kind.value,
                        reason=action.reason.text,
                    )
                )
        summary = plan.summary
        counts = {kind.value: n for kind, n in summary.counts.items()}
        changes = sum(n for kind, n in summary.counts.items() if kind.is_change)
        self.write(
            ChangeSummaryLine(
                level="info",
                message=f"{operation}: {changes} change(s)",
                timestamp=at,
                operation=operation,
                counts=counts,
                jobs=summary.jobs,
                requests=summary.requests,
                estimated_cost_usd=summary.estimated_cost_usd,
            )
        )

    def emit(self, event: Event) -> None:
        self.write(event_line(event, self._stamp()))

    def outcome(
        self,
        status: Literal["complete", "failed", "interrupted"],
        message: str,
        *,
        failed: Sequence[str] = (),
        unsettled: Sequence[str] = (),
        waiting: Sequence[str] = (),
    ) -> None:
        self.write(
            OutcomeLine(
                level="error" if status == "failed" else "info",
                message=message,
                timestamp=self._stamp(),
                status=status,
                failed=list(failed),
                unsettled=list(unsettled),
                waiting=list(waiting),
            )
        )


def event_line(event: Event, at: str) -> BaseModel:
    """The line of one apply event."""
    who = f"{event.resource}: " if event.resource else ""
    match event.kind:
        case EventKind.STEP:
            return StepLine(
                level="info", message=who + event.message, timestamp=at, resource=event.resource
            )
        case EventKind.WARNING:
            return WarningLine(
                level="warn", message=who + event.message, timestamp=at, resource=event.resource
            )
        case EventKind.FAILED:
            return FailedLine(
                level="error", message=who + event.message, timestamp=at, resource=event.resource
            )
        case EventKind.PROGRESS:
            return ProgressLine(
                level="info",
                message=event.message,
                timestamp=at,
                jobs=dict(event.counts),
                elapsed_seconds=event.elapsed_seconds,
            )
        case EventKind.PHASE:
            return _phase_line(event, at)


def _phase_line(event: Event, at: str) -> PhaseLine:
    phase = event.phase or Phase.PENDING
    transfer, stats = event.transfer, event.stats
    message = f"{event.resource}: {phase.value}"
    if transfer is None and event.message != phase.value:
        message += f" ({event.message})"
    return PhaseLine(
        level="info",
        message=message,
        timestamp=at,
        resource=event.resource or "",
        phase=phase,
        file=event.message if transfer is not None else None,
        bytes_done=transfer.done if transfer else None,
        bytes_total=transfer.total if transfer else None,
        requests_total=stats.total if stats else None,
        requests_succeeded=stats.succeeded if stats else None,
        requests_failed=stats.failed if stats else None,
    )
