"""Off a terminal (CI logs, pipes), apply writes one timestamped line per change: a phase
entered, a running job's counts moved; never one per piece of a transfer."""

from __future__ import annotations

import io

from reconciler.apply.events import Event, EventKind, Phase, Transfer
from reconciler.cli.reporting import PlainReporter
from reconciler.clock import FakeClock
from reconciler.live.snapshot import BatchStats


def test_each_change_is_one_timestamped_line_and_transfer_pieces_are_not() -> None:
    clock = FakeClock()
    out = io.StringIO()
    reporter = PlainReporter(out, clock=clock)

    def phase(phase: Phase, **fields: object) -> None:
        reporter.emit(Event(EventKind.PHASE, "eval", phase.value, phase=phase, **fields))  # type: ignore[arg-type]
        clock.advance(1)

    phase(Phase.UPLOADING, transfer=Transfer(0, 100))
    phase(Phase.UPLOADING, transfer=Transfer(50, 100))
    reporter.emit(Event(EventKind.STEP, "eval", "uploaded input as files/a"))
    phase(Phase.PENDING, stats=BatchStats(4))
    phase(Phase.RUNNING, stats=BatchStats(4, 1))
    phase(Phase.RUNNING, stats=BatchStats(4, 1))
    phase(Phase.RUNNING, stats=BatchStats(4, 3, 1))
    reporter.emit(Event(EventKind.PHASE, "eval", "3 ok, 1 failed", phase=Phase.COLLECTED))

    assert out.getvalue().splitlines() == [
        "2026-01-01T00:00:00Z eval: uploading",
        "2026-01-01T00:00:02Z eval: uploaded input as files/a",
        "2026-01-01T00:00:02Z eval: pending (4 request(s) queued)",
        "2026-01-01T00:00:03Z eval: running (1/4 done)",
        "2026-01-01T00:00:05Z eval: running (4/4 done, 1 failed)",
        "2026-01-01T00:00:06Z eval: collected (3 ok, 1 failed)",
    ]


def test_polling_rounds_are_written_only_when_the_counts_move() -> None:
    clock = FakeClock()
    out = io.StringIO()
    reporter = PlainReporter(out, clock=clock)
    for counts in ((("RUNNING", 2),), (("RUNNING", 2),), (("RUNNING", 1), ("SUCCEEDED", 1))):
        reporter.emit(Event(EventKind.PROGRESS, None, "", counts=counts, elapsed_seconds=3.0))

    assert out.getvalue().splitlines() == [
        "2026-01-01T00:00:00Z jobs: 2 running after 3s",
        "2026-01-01T00:00:00Z jobs: 1 running, 1 succeeded after 3s",
    ]
