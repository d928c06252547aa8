"""Reporters for apply: a live rich display on a terminal, plain lines elsewhere (CI logs)."""

from __future__ import annotations

import sys
from typing import TextIO

import click

from reconciler.apply.events import Event, EventKind


class PlainReporter:
    """One line per event on stderr: what CI logs and pipes want."""

    def __init__(self, stream: TextIO | None = None, *, color: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._color = color
        self._last_progress: tuple[tuple[str, int], ...] | None = None

    def emit(self, event: Event) -> None:
        match event.kind:
            case EventKind.STEP:
                text = f"{event.resource}: {event.message}"
            case EventKind.WARNING:
                who = f"{event.resource}: " if event.resource else ""
                text = (
                    click.style(f"Warning: {who}{event.message}", fg="yellow")
                    if self._color
                    else f"Warning: {who}{event.message}"
                )
            case EventKind.FAILED:
                text = f"{event.resource}: failed: {event.message}"
                text = click.style(text, fg="red") if self._color else text
            case EventKind.PROGRESS:
                # Repeat a progress line only when the counts moved: polling can be long.
                if event.counts == self._last_progress:
                    return
                self._last_progress = event.counts
                counts = ", ".join(f"{n} {state.lower()}" for state, n in event.counts) or "no jobs"
                elapsed = (
                    f" after {event.elapsed_seconds:.0f}s"
                    if event.elapsed_seconds is not None
                    else ""
                )
                text = f"jobs: {counts}{elapsed}"
        click.echo(text, file=self._stream)


class SilentReporter:
    def emit(self, event: Event) -> None:
        return None


class RichReporter:
    """On a terminal: steps as lines above a live status line (jobs by state, elapsed time)."""

    def __init__(self, *, color: bool = True) -> None:
        from rich.console import Console

        self._console = Console(stderr=True, no_color=not color, highlight=False)
        self._status = self._console.status("planning…", spinner="dots")
        self._started = False

    def __enter__(self) -> RichReporter:
        self._status.start()
        self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._status.stop()
            self._started = False

    def emit(self, event: Event) -> None:
        from rich.markup import escape

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
            case EventKind.PROGRESS:
                counts = ", ".join(f"{n} {state.lower()}" for state, n in event.counts) or "no jobs"
                elapsed = (
                    f"{event.elapsed_seconds:.0f}s" if event.elapsed_seconds is not None else ""
                )
                self._status.update(f"waiting for jobs: {counts} [dim]({elapsed})[/]")
