"""The live view of apply on a terminal, drawn at fixed times: one row per resource with its
phase, bytes, request counts and elapsed time, and a footer of totals and estimated cost."""

from __future__ import annotations

import io

from rich.console import Console

from reconciler.apply.events import Event, EventKind, Phase, Transfer
from reconciler.cli.live_view import LiveView, clock_text, size
from reconciler.live.snapshot import BatchStats


def _phase(
    resource: str,
    phase: Phase,
    message: str = "",
    *,
    transfer: Transfer | None = None,
    stats: BatchStats | None = None,
) -> Event:
    return Event(
        EventKind.PHASE,
        resource,
        message or phase.value,
        phase=phase,
        transfer=transfer,
        stats=stats,
    )


def _draw(view: LiveView, now: float) -> str:
    console = Console(
        file=io.StringIO(), record=True, force_terminal=True, width=100, color_system=None
    )
    console.print(view.render(now))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def _four_resources() -> LiveView:
    view = LiveView(
        title="reconciler apply",
        resources=["eval", "labels", "summaries", "translate"],
        started=100.0,
        estimated_cost_usd=0.5817,
    )
    view.update(
        _phase("eval", Phase.UPLOADING, "data/eval.jsonl", transfer=Transfer(0, 8_000_000)), 101.0
    )
    view.update(
        _phase("eval", Phase.UPLOADING, "data/eval.jsonl", transfer=Transfer(4_000_000, 8_000_000)),
        103.0,
    )
    view.update(_phase("labels", Phase.CREATING), 101.0)
    view.update(_phase("labels", Phase.RUNNING, stats=BatchStats(400, 118, 2)), 105.0)
    view.update(_phase("summaries", Phase.PENDING, stats=BatchStats(2000)), 102.0)
    view.update(Event(EventKind.PROGRESS, None, "", counts=(("PENDING", 1), ("RUNNING", 1))), 105.0)
    return view


def test_each_resource_has_a_row_with_its_phase_progress_and_elapsed_time() -> None:
    assert _draw(_four_resources(), 107.0) == "\n".join(
        [
            "reconciler apply",
            "resource   phase      progress                           elapsed",
            "eval       uploading  4.0 MB / 8.0 MB (50%) at 2.0 MB/s     0:06",
            "labels     running    120/400 done, 2 failed                0:06",
            "summaries  pending    2000 request(s) queued                0:05",
            "translate  waiting",
            "4 resource(s): 1 running, 1 pending, 1 uploading, 1 waiting · jobs: 1 pending, 1 running · 0:07",
            "elapsed · estimated cost ~$0.5817",
        ]
    )


def test_elapsed_times_tick_between_events() -> None:
    view = _four_resources()

    first, later = _draw(view, 107.0), _draw(view, 131.0)

    assert "0:06" in first.splitlines()[3] and "0:30" in later.splitlines()[3]
    assert "0:31" in later.splitlines()[-2]


def test_a_settled_row_stops_its_clock_and_says_how_it_ended() -> None:
    view = _four_resources()
    view.update(
        _phase("eval", Phase.DOWNLOADING, "files/out", transfer=Transfer(1000, 2000)), 110.0
    )
    view.update(_phase("eval", Phase.COLLECTED, "2000 ok, 0 failed"), 112.0)
    view.update(Event(EventKind.FAILED, "labels", "the job ended FAILED"), 113.0)
    view.update(Event(EventKind.STEP, "translate", "cancelled batches/x"), 114.0)

    drawn = _draw(view, 200.0).splitlines()

    assert drawn[2].split() == ["eval", "collected", "2000", "ok,", "0", "failed", "0:11"]
    assert drawn[3].split() == ["labels", "failed", "the", "job", "ended", "FAILED", "0:12"]
    assert drawn[5].split() == ["translate", "done", "cancelled", "batches/x", "0:00"]
    assert not view.settled, "summaries is still pending"
    view.update(_phase("summaries", Phase.ENDED, "attempt 1 ended CANCELLED"), 201.0)
    assert view.settled


def test_shards_uploading_side_by_side_add_up_in_one_row() -> None:
    view = LiveView(title="t", resources=["big"], started=0.0)
    view.update(_phase("big", Phase.UPLOADING, "s0", transfer=Transfer(0, 1000)), 0.0)
    view.update(_phase("big", Phase.UPLOADING, "s1", transfer=Transfer(500, 1000)), 1.0)
    view.update(_phase("big", Phase.UPLOADING, "s0", transfer=Transfer(700, 1000)), 1.0)

    assert "1.2 kB / 2.0 kB (60%)" in _draw(view, 1.0)


def test_sizes_and_clock_read_as_the_plan_shows_them() -> None:
    assert [size(n) for n in (999, 4000, 1_234_000_000)] == ["999 B", "4.0 kB", "1.2 GB"]
    assert [clock_text(s) for s in (7, 750, 3723)] == ["0:07", "12:30", "1:02:03"]
