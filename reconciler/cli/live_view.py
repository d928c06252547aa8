"""The live view of `apply` and `destroy` on a terminal: one row per resource and a footer.

`LiveView` folds apply's events into rows (phase, bytes and rate of a transfer, the service's
request counts, elapsed time, why it failed) and draws them as a rich table. It never reads a
clock itself: `update` and `render` take the time, so the rich `Live` display that redraws it
(reporting.py) ticks the elapsed times four times a second between events, and tests draw it
at fixed times. Events arrive on the event loop's thread and frames are drawn on rich's refresh
thread, hence the lock. rich is imported when a frame is drawn: off a terminal (CI, the plain
reporter's `stats_text`) it is never needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.apply.events import Event, EventKind, Phase, Transfer
from reconciler.live.snapshot import BatchStats

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

_STYLE = {
    Phase.PREPARING: "cyan",
    Phase.UPLOADING: "cyan",
    Phase.CREATING: "cyan",
    Phase.PENDING: "yellow",
    Phase.RUNNING: "blue",
    Phase.DOWNLOADING: "cyan",
    Phase.COLLECTED: "green",
    Phase.ENDED: "magenta",
}


def size(n: float) -> str:
    """Bytes in SI units, one decimal (`4.0 kB`, `1.2 GB`), as the plan shows them."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            break
    return f"{n:.1f} {unit}"


def clock_text(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Row:
    """One resource as the view shows it."""

    name: str
    phase: Phase | None = None
    note: str = ""
    """The last step's line (destroy, cancel, adopt: work with no phase), or the phase's detail."""
    transfers: dict[str, Transfer] = field(default_factory=dict)
    """The files of the current phase's transfers (shards go up side by side), by name."""
    transfer_since: tuple[float, int] | None = None
    """(time, bytes) when the phase's transfers were first seen: the rate is measured from
    there to the last update (`transfer_at`), so it holds still between updates."""
    transfer_at: float = 0.0
    stats: BatchStats | None = None
    started: float | None = None
    settled: float | None = None
    failure: str | None = None

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.settled if self.settled is not None else now) - self.started


def transfer_text(transfer: Transfer, since: tuple[float, int] | None, now: float) -> str:
    """`12.0 MB / 128.0 MB (9%) at 30.1 MB/s`: the rate from `since` (time, bytes) to `now`."""
    text = size(transfer.done)
    if transfer.total:
        share = min(100, transfer.done * 100 // transfer.total)
        text += f" / {size(transfer.total)} ({share}%)"
    if since is not None and now > since[0] and transfer.done > since[1]:
        text += f" at {size((transfer.done - since[1]) / (now - since[0]))}/s"
    return text


def stats_text(phase: Phase, stats: BatchStats) -> str:
    """`400 request(s) queued` while pending; `120/400 done, 3 failed` once running."""
    if phase is Phase.PENDING:
        return f"{stats.total} request(s) queued"
    text = f"{stats.done}/{stats.total} done"
    return text + (f", {stats.failed} failed" if stats.failed else "")


@dataclass
class LiveView:
    """The rows of a run and its footer. `update` with each event, `render` at any time."""

    title: str
    resources: Sequence[str]
    """Resources the plan changes, in plan order; others join when an event names them."""
    started: float
    estimated_cost_usd: float | None = None
    rows: dict[str, Row] = field(default_factory=dict)
    jobs: tuple[tuple[str, int], ...] = ()
    """The last polling round's job counts by state."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for name in self.resources:
            self.rows.setdefault(name, Row(name))

    def update(self, event: Event, now: float) -> None:
        with self._lock:
            if event.kind is EventKind.PROGRESS:
                if event.counts:
                    self.jobs = event.counts
                return
            if event.resource is None:
                return
            row = self.rows.setdefault(event.resource, Row(event.resource))
            if row.started is None:
                row.started = now
            match event.kind:
                case EventKind.PHASE:
                    _enter(row, event, now)
                case EventKind.FAILED:
                    row.failure = event.message
                    row.settled = now
                case EventKind.STEP:
                    if row.phase is None:
                        row.note = event.message
                        row.settled = now
                case EventKind.WARNING:
                    return

    def render(self, now: float) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            table = Table(box=None, pad_edge=False, expand=False, show_header=True)
            table.add_column("resource", style="bold", no_wrap=True)
            table.add_column("phase", no_wrap=True)
            table.add_column("progress")
            table.add_column("elapsed", justify="right", no_wrap=True)
            for row in self.rows.values():
                table.add_row(row.name, *_cells(row, now))
            return Group(Text(self.title, style="bold"), table, self._footer(now))

    def _footer(self, now: float) -> Text:
        from rich.text import Text

        tally: dict[str, int] = {}
        for row in self.rows.values():
            key = "failed" if row.failure else (row.phase.value if row.phase else "waiting")
            if row.phase is None and row.note and not row.failure:
                key = "done"
            tally[key] = tally.get(key, 0) + 1
        order = ["collected", "done", "ended", "failed", "downloading", "running", "pending"]
        order += ["creating", "uploading", "preparing", "waiting"]
        parts = [f"{tally[k]} {k}" for k in order if tally.get(k)]
        text = Text(f"{len(self.rows)} resource(s): " + ", ".join(parts), style="bold")
        if self.jobs:
            text.append(" · jobs: " + ", ".join(f"{n} {s.lower()}" for s, n in self.jobs))
        text.append(f" · {clock_text(now - self.started)} elapsed")
        if self.estimated_cost_usd is not None:
            text.append(f" · estimated cost ~${self.estimated_cost_usd:.4f}")
        return text

    @property
    def settled(self) -> bool:
        """Every row has ended (collected, ended, failed or done)."""
        with self._lock:
            return all(r.settled is not None for r in self.rows.values())


def _summed(transfers: Iterable[Transfer]) -> Transfer:
    done = total = 0
    known = True
    for transfer in transfers:
        done += transfer.done
        known = known and transfer.total is not None
        total += transfer.total or 0
    return Transfer(done, total if known else None)


def _enter(row: Row, event: Event, now: float) -> None:
    phase = event.phase
    if phase is None:
        return
    if phase is not row.phase:
        row.transfers = {}
        row.transfer_since = None
        row.note = ""
    row.phase = phase
    row.failure = None
    if event.transfer is not None:
        if row.transfer_since is None:
            row.transfer_since = (now, event.transfer.done)
        row.transfers[event.message] = event.transfer
        row.transfer_at = now
    if event.stats is not None:
        row.stats = event.stats
    if phase in (Phase.COLLECTED, Phase.ENDED) and event.message != phase.value:
        row.note = event.message
    row.settled = now if phase.is_settled else None


def _cells(row: Row, now: float) -> tuple[Text, Text, str]:
    from rich.text import Text

    elapsed = clock_text(row.elapsed(now)) if row.started is not None else ""
    if row.failure is not None:
        return Text("failed", style="bold red"), Text(row.failure, style="red"), elapsed
    if row.phase is None:
        if row.note:
            return Text("done", style="green"), Text(row.note), elapsed
        return Text("waiting", style="dim"), Text(""), elapsed
    detail = ""
    if row.phase in (Phase.UPLOADING, Phase.DOWNLOADING) and row.transfers:
        detail = transfer_text(_summed(row.transfers.values()), row.transfer_since, row.transfer_at)
    elif row.phase in (Phase.PENDING, Phase.RUNNING) and row.stats is not None:
        detail = stats_text(row.phase, row.stats)
    elif row.note:
        detail = row.note
    return Text(row.phase.value, style=_STYLE[row.phase]), Text(detail), elapsed
