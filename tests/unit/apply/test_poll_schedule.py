"""When converge polls next: its backoff, or sooner when the service's request counts say a
job is about to end; never sooner than the project's initial interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.apply.poll import expected_end_in, first_sightings, next_pause, summed_stats
from reconciler.live.snapshot import BatchStats, Live, LiveJob
from reconciler.state.document import JobState

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _job(state: JobState, stats: BatchStats | None, *, age: float = 60.0) -> LiveJob:
    return LiveJob(
        name="batches/x",
        display_name=None,
        state=state,
        model=None,
        create_time=NOW - timedelta(seconds=age),
        stats=stats,
    )


def test_a_running_job_is_expected_to_end_at_the_pace_its_counts_show() -> None:
    # 60 s for 300 of 400 requests: the last 100 take about 20 s more.
    assert expected_end_in(_job(JobState.RUNNING, BatchStats(400, 290, 10)), NOW) == 20.0


def test_once_seen_working_the_pace_is_measured_from_there_not_from_its_queued_time() -> None:
    # Seen at 10 of 400 ten seconds ago, now at 210: 200 requests in 10 s, 190 left: 9.5 s.
    job = _job(JobState.RUNNING, BatchStats(400, 210))
    assert expected_end_in(job, NOW, (NOW - timedelta(seconds=10), 10)) == 9.5


def test_a_job_is_first_sighted_when_it_has_requests_done_and_keeps_that_sighting() -> None:
    early = Live(NOW, jobs={"batches/x": _job(JobState.RUNNING, BatchStats(400))})
    working = Live(NOW, jobs={"batches/x": _job(JobState.RUNNING, BatchStats(400, 10))})
    later = Live(
        NOW + timedelta(seconds=5), jobs={"batches/x": _job(JobState.RUNNING, BatchStats(400, 90))}
    )

    seen = first_sightings(first_sightings(first_sightings({}, early), working), later)

    assert seen == {"batches/x": (NOW, 10)}


def test_nothing_is_expected_of_a_pending_job_or_one_without_counts() -> None:
    assert expected_end_in(_job(JobState.PENDING, BatchStats(400)), NOW) is None
    assert expected_end_in(_job(JobState.RUNNING, None), NOW) is None
    assert expected_end_in(_job(JobState.RUNNING, BatchStats(400)), NOW) is None


def test_a_job_with_every_request_done_is_expected_to_end_now() -> None:
    assert expected_end_in(_job(JobState.RUNNING, BatchStats(4, 4)), NOW) == 0.0


def test_the_next_poll_comes_when_the_first_job_should_end_but_never_under_the_floor() -> None:
    soon = _job(JobState.RUNNING, BatchStats(400, 300))
    done = _job(JobState.RUNNING, BatchStats(4, 4))
    slow = _job(JobState.RUNNING, BatchStats(400, 1))

    assert next_pause(60.0, [slow, soon], NOW, NOW, floor=1.0) == 20.0
    assert next_pause(60.0, [soon, done], NOW, NOW, floor=1.0) == 1.0
    assert next_pause(8.0, [soon], NOW, NOW, floor=1.0) == 8.0, "backoff is the longest wait"
    assert next_pause(8.0, [], NOW, NOW, floor=1.0) == 8.0


def test_the_time_since_the_jobs_were_read_counts_toward_the_wait() -> None:
    soon = _job(JobState.RUNNING, BatchStats(400, 300))
    later = NOW + timedelta(seconds=5)
    assert next_pause(60.0, [soon], NOW, later, floor=1.0) == 15.0


def test_a_resources_counts_sum_over_its_shards() -> None:
    shards = [_job(JobState.RUNNING, BatchStats(10, 4, 1)), _job(JobState.RUNNING, None)]
    assert summed_stats(shards) == BatchStats(10, 4, 1)
    assert summed_stats([_job(JobState.RUNNING, None)]) is None
