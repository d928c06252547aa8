"""Reporters for apply and destroy: a live view on a terminal, timestamped lines elsewhere (CI
logs), JSON lines with `--format json` (event_stream.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import click

from reconciler.apply.events import Event, EventKind, Phase
from reconciler.cli.live_view import LiveView, stats_text
from reconciler.clock import Clock, SystemClock
from reconciler.plan.actions import Plan

if TYPE_CHECKING:
    from rich.live import Live


def timestamp(moment: datetime) -> str:
    """`2026-01-01T12:00:03Z`: the second is precise enough for a log line."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PlainReporter:
    """One timestamped line per change on stderr: what CI logs and pipes want. A resource's
    phase is written when it changes (and a running job's counts when they move), never for
    each piece of a transfer."""

    def __init__(
        self, stream: TextIO | None = None, *, color: bool = False, clock: Clock | None = None
    ) -> None:
        self._stream = stream or sys.stderr
        self._color = color
        self._clock = clock or SystemClock()
        self._last_progress: tuple[tuple[str, int], ...] | None = None
        self._phases: dict[str, tuple[Phase, str]] = {}

    def emit(self, event: Event) -> None:
        text = self._text(event)
        if text is not None:
            click.echo(f"{timestamp(self._clock.now())} {text}", file=self._stream)

    def _text(self, event: Event) -> str | None:
        match event.kind:
            case EventKind.STEP:
                return f"{event.resource}: {event.message}"
            case EventKind.WARNING:
                who = f"{event.resource}: " if event.resource else ""
                text = f"Warning: {who}{event.message}"
                return click.style(text, fg="yellow") if self._color else text
            case EventKind.FAILED:
                text = f"{event.resource}: failed: {event.message}"
                return click.style(text, fg="red") if self._color else text
            case EventKind.PROGRESS:
                # Repeat a progress line only when the counts moved: polling can be long.
                if event.counts == self._last_progress:
                    return None
                self._last_progress = event.counts
                counts = ", ".join(f"{n} {state.lower()}" for state, n in event.counts) or "no jobs"
                elapsed = (
                    f" after {event.elapsed_seconds:.0f}s"
                    if event.elapsed_seconds is not None
                    else ""
                )
                return f"jobs: {counts}{elapsed}"
            case EventKind.PHASE:
                return self._phase_text(event)

    def _phase_text(self, event: Event) -> str | None:
        if event.resource is None or event.phase is None:
            return None
        detail = stats_text(event.phase, event.stats) if event.stats is not None else ""
        if event.phase in (Phase.COLLECTED, Phase.ENDED):
            detail = "" if event.message == event.phase.value else event.message
        key = (event.phase, detail)
        if self._phases.get(event.resource) == key:
            return None
        self._phases[event.resource] = key
        return f"{event.resource}: {event.phase.value}" + (f" ({detail})" if detail else "")


class SilentReporter:
    def emit(self, event: Event) -> None:
        return None


class RichReporter:
    """On a terminal: a live table of the plan's resources, redrawn four times a second (so
    elapsed times tick between polls), with each step printed above it as a line. The table's
    last frame stays on screen when the run ends."""

    def __init__(
        self, plan: Plan, *, title: str, color: bool = True, clock: Clock | None = None
    ) -> None:
        from rich.console import Console

        self._clock = clock or SystemClock()
        self._console = Console(stderr=True, no_color=not color, highlight=False)
        self.view = LiveView(
            title=title,
            resources=[a.resource for a in plan.actions if a.kind.is_change],
            started=self._clock.monotonic(),
            estimated_cost_usd=plan.summary.estimated_cost_usd if plan.summary.jobs else None,
        )
        self._live: Live | None = None

    def __enter__(self) -> RichReporter:
        from rich.live import Live

        self._live = Live(
            get_renderable=lambda: self.view.render(self._clock.monotonic()),
            console=self._console,
            refresh_per_second=4,
            redirect_stderr=False,
            redirect_stdout=False,
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def emit(self, event: Event) -> None:
        from rich.markup import escape

        self.view.update(event, self._clock.monotonic())
        match event.kind:
            case EventKind.STEP:
                self._console.print(
                    f"[bold]{escape(event.resource or '')}[/]: {escape(event.message)}"
                )
            case EventKind.WARNING:
                who = f"{event.resource}: " if event.resource else ""
                self._console.print(f"[yellow]Warning: {escape(who + event.message)}[/]")
            case EventKind.FAILED:
                self._console.print(
                    f"[red]{escape(event.resource or '')}: failed: {escape(event.message)}[/]"
                )
            case EventKind.PROGRESS | EventKind.PHASE:
                return
