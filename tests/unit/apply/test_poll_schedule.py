"""When converge polls next: its backoff, or sooner when the service's request counts, or how
long the project's jobs typically take, say a job is about to end; never sooner than the
project's initial interval, nor (long jobs) than a twentieth of a typical run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from reconciler.apply.poll import (
    Sighting,
    expected_end_in,
    first_sightings,
    next_pause,
    summed_stats,
    typical_run,
)
from reconciler.clock import FakeClock
from reconciler.live.snapshot import BatchStats, Live, LiveJob
from reconciler.state.document import JobState

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _job(
    state: JobState,
    stats: BatchStats | None,
    *,
    age: float = 60.0,
    ran: float | None = None,
    name: str = "batches/x",
) -> LiveJob:
    """A job created `age` seconds before NOW; `ran`: it ended that many seconds after."""
    created = NOW - timedelta(seconds=age)
    return LiveJob(
        name=name,
        display_name=None,
        state=state,
        model=None,
        create_time=created,
        end_time=None if ran is None else created + timedelta(seconds=ran),
        stats=stats,
    )


def _ended(ran: float, *, age: float = 600.0) -> LiveJob:
    return _job(JobState.SUCCEEDED, None, age=age, ran=ran)


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


def test_a_typical_run_is_the_median_create_to_end_time_of_the_jobs_that_ended() -> None:
    ended = [_ended(2.0), _ended(3.0), _ended(30.0)]
    running = _job(JobState.RUNNING, BatchStats(4, 1), age=1.0)

    assert typical_run([*ended, running]) == 3.0
    assert typical_run([running]) is None, "no job ended: nothing is typical yet"


def test_a_job_without_counts_is_expected_to_take_a_typical_run_from_its_creation() -> None:
    pending = _job(JobState.PENDING, None, age=3.0)
    queued_counts = _job(JobState.RUNNING, BatchStats(4), age=1.0)

    assert expected_end_in(pending, NOW, typical=4.0) == 1.0
    assert expected_end_in(queued_counts, NOW, typical=4.0) == 3.0


def test_the_counts_pace_wins_over_the_typical_run() -> None:
    # 60 s for 300 of 400 requests says 20 s more, whatever other jobs took.
    job = _job(JobState.RUNNING, BatchStats(400, 300))
    assert expected_end_in(job, NOW, typical=5.0) == 20.0


def test_a_job_past_its_typical_run_or_ended_is_not_expected_to_end_at_any_time() -> None:
    overdue = _job(JobState.PENDING, None, age=10.0)
    assert expected_end_in(overdue, NOW, typical=4.0) is None
    assert expected_end_in(_ended(2.0), NOW, typical=4.0) is None


def test_an_overdue_job_is_polled_for_at_the_backoff_not_at_the_floor() -> None:
    stuck = _job(JobState.PENDING, None, age=600.0)
    assert next_pause(32.0, [stuck], NOW, NOW, floor=1.0, typical=2.0) == 32.0


def test_a_fleet_of_two_second_jobs_is_polled_for_when_its_next_job_should_end() -> None:
    # Backoff has grown to 8 s, but the job created 0.5 s ago typically ends 1.5 s from now.
    fresh = _job(JobState.PENDING, None, age=0.5)
    assert next_pause(8.0, [fresh], NOW, NOW, floor=1.0, typical=2.0) == 1.5


def test_hour_long_jobs_are_not_polled_for_more_often_than_a_twentieth_of_their_run() -> None:
    # 100 jobs of a typical hour, one expected to end every second from now on: a poll each 3 minutes
    # at most (a twentieth of the hour), and the backoff's 60 s cap is then the longest wait.
    fleet = [_job(JobState.RUNNING, None, age=3500.0 + i, name=f"batches/{i}") for i in range(100)]
    assert next_pause(600.0, fleet, NOW, NOW, floor=1.0, typical=3600.0) == 180.0
    assert next_pause(60.0, fleet, NOW, NOW, floor=1.0, typical=3600.0) == 60.0


def _two_second_job(name: str, created: datetime, at: datetime, *, counts: bool) -> LiveJob:
    """A 4-request job as the service shows it at `at`: pending for 0.5 s, then working through
    its requests at an even pace, ended 2 s after `created`. Without `counts` the service shows
    none (as it often does for small jobs) and the job stays PENDING until it ends."""
    age = (at - created).total_seconds()
    if age >= 2.0:
        state, stats = JobState.SUCCEEDED, BatchStats(4, 4)
    elif age < 0.5:
        state, stats = JobState.PENDING, BatchStats(4)
    else:
        state, stats = JobState.RUNNING, BatchStats(4, int(4 * (age - 0.5) / 1.5))
    if not counts:
        state = state if state.is_terminal else JobState.PENDING
        stats = None
    ended = created + timedelta(seconds=2.0) if state.is_terminal else None
    return LiveJob(name, None, state, None, create_time=created, end_time=ended, stats=stats)


def _polls_until_settled(
    clock: FakeClock, created: list[datetime], *, counts: bool = True
) -> list[datetime]:
    """Converge's schedule with the default settings (1 s growing to 60 s, at the longest
    jitter), against `created` two-second jobs: when each poll came."""
    delay = 1.0
    polls: list[datetime] = []
    sightings: dict[str, Sighting] = {}
    while True:
        observed = clock.now()
        polls.append(observed)
        jobs = [
            _two_second_job(f"batches/{i}", c, observed, counts=counts)
            for i, c in enumerate(created)
        ]
        if all(job.state.is_terminal for job in jobs):
            return polls
        live = Live(observed, jobs={job.name: job for job in jobs})
        sightings = first_sightings(sightings, live)
        running = [job for job in jobs if not job.state.is_terminal]
        pause = next_pause(
            delay,
            running,
            observed,
            clock.now(),
            floor=1.0,
            sightings=sightings,
            typical=typical_run(jobs),
        )
        asyncio.run(clock.sleep(pause))
        delay = min(60.0, delay * 2)


def test_with_the_defaults_a_two_second_job_is_seen_ended_within_a_poll_interval() -> None:
    clock = FakeClock(NOW)
    polls = _polls_until_settled(clock, [NOW])
    assert polls[-1] - NOW <= timedelta(seconds=3), polls


def test_a_fleet_created_over_three_seconds_is_seen_settled_soon_after_its_last_job_ends() -> None:
    # 30 jobs created 0.1 s apart, polling from the last create on: the backoff alone would
    # wait 1, 2, 4, 8 s; the counts and the typical run keep every wait near a second.
    clock = FakeClock(NOW)
    created = [NOW + timedelta(seconds=0.1 * i) for i in range(30)]
    clock.advance(3.0)
    polls = _polls_until_settled(clock, created)
    last_end = created[-1] + timedelta(seconds=2.0)
    assert polls[-1] - last_end <= timedelta(seconds=1.0), polls
    assert all(b - a >= timedelta(seconds=1.0) for a, b in pairwise(polls))


def test_without_counts_the_typical_run_of_the_ended_jobs_says_when_to_poll() -> None:
    # 50 jobs created 0.1 s apart that show no counts; polling from t=3 s, when the first ten
    # have ended. The backoff alone would poll at 3, 4, 6, 10 s and see the last one (ended at
    # 6.9 s) three seconds late; their typical 2 s run says the rest end from 4 s on.
    clock = FakeClock(NOW)
    created = [NOW + timedelta(seconds=0.1 * i) for i in range(50)]
    clock.advance(3.0)
    polls = _polls_until_settled(clock, created, counts=False)
    last_end = created[-1] + timedelta(seconds=2.0)
    assert polls[-1] - last_end <= timedelta(seconds=1.0), polls
    assert all(b - a >= timedelta(seconds=1.0) for a, b in pairwise(polls))
