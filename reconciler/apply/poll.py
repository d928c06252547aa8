"""When converge polls next: the backoff, cut short when the service's counts say a job is
about to end. Pure: the jobs and the time arrive as values."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from reconciler.live.snapshot import BatchStats, LiveJob
from reconciler.state.document import JobState


def expected_end_in(job: LiveJob, now: datetime) -> float | None:
    """Seconds until a running job is expected to have worked through every request, at the
    pace its `batchStats` show since it was created; None when nothing says (no counts yet).

    The pace counts its pending time too, so the guess is late rather than early, and a poll
    at the guess does not arrive before the job ends."""
    stats = job.stats
    if job.state is not JobState.RUNNING or stats is None or stats.total <= 0:
        return None
    if stats.done >= stats.total:
        return 0.0
    if stats.done <= 0 or job.create_time is None:
        return None
    elapsed = (now - job.create_time).total_seconds()
    if elapsed <= 0:
        return None
    return (stats.total - stats.done) * elapsed / stats.done


def next_pause(backoff: float, jobs: Iterable[LiveJob], now: datetime, *, floor: float) -> float:
    """The wait before the next poll: `backoff`, or sooner when a job is expected to end before
    it -- never under `floor` (the project's initial poll interval)."""
    ends = [end for job in jobs if (end := expected_end_in(job, now)) is not None]
    if not ends:
        return backoff
    return min(backoff, max(floor, min(ends)))


def summed_stats(jobs: Iterable[LiveJob]) -> BatchStats | None:
    """The request counts over `jobs` (a resource's shards); None when none reported any."""
    reported = [job.stats for job in jobs if job.stats is not None]
    if not reported:
        return None
    total = BatchStats()
    for stats in reported:
        total = total + stats
    return total
