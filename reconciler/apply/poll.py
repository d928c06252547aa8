"""When converge polls next: the backoff, cut short when the service's counts say a job is
about to end. Pure: the jobs, what was seen of them before, and the time arrive as values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from reconciler.live.snapshot import BatchStats, Live, LiveJob
from reconciler.state.document import JobState

Sighting = tuple[datetime, int]
"""When a job was first seen with requests done, and how many."""


def first_sightings(previous: Mapping[str, Sighting], live: Live) -> dict[str, Sighting]:
    """`previous`, plus each job seen with requests done for the first time in `live`: its
    pace is measured from there, after its time in the queue."""
    seen = dict(previous)
    for job in live.jobs.values():
        if job.stats is not None and job.stats.done > 0:
            seen.setdefault(job.name, (live.observed_at, job.stats.done))
    return seen


def expected_end_in(
    job: LiveJob, observed: datetime, since: Sighting | None = None
) -> float | None:
    """Seconds after `observed` (when `job` was read) until a running job is expected to have
    worked through every request; None when nothing says (no counts yet).

    The pace is the one since `since` (its first sighting with requests done) when the job has
    moved on from it; otherwise since it was created, which counts its pending time too and so
    guesses late rather than early: a poll at the guess does not come before the job ends."""
    stats = job.stats
    if job.state is not JobState.RUNNING or stats is None or stats.total <= 0:
        return None
    if stats.done >= stats.total:
        return 0.0
    left = stats.total - stats.done
    if since is not None and stats.done > since[1]:
        elapsed = (observed - since[0]).total_seconds()
        if elapsed > 0:
            return left * elapsed / (stats.done - since[1])
    if stats.done <= 0 or job.create_time is None:
        return None
    elapsed = (observed - job.create_time).total_seconds()
    if elapsed <= 0:
        return None
    return left * elapsed / stats.done


def next_pause(
    backoff: float,
    jobs: Iterable[LiveJob],
    observed: datetime,
    now: datetime,
    *,
    floor: float,
    sightings: Mapping[str, Sighting] | None = None,
) -> float:
    """The wait from `now` before the next poll: `backoff`, or sooner when a job read at
    `observed` is expected to end before it -- never under `floor` (the project's initial poll
    interval)."""
    sightings = sightings or {}
    ends = [
        end
        for job in jobs
        if (end := expected_end_in(job, observed, sightings.get(job.name))) is not None
    ]
    if not ends:
        return backoff
    since_read = max(0.0, (now - observed).total_seconds())
    return min(backoff, max(floor, min(ends) - since_read))


def summed_stats(jobs: Iterable[LiveJob]) -> BatchStats | None:
    """The request counts over `jobs` (a resource's shards); None when none reported any."""
    reported = [job.stats for job in jobs if job.stats is not None]
    if not reported:
        return None
    total = BatchStats()
    for stats in reported:
        total = total + stats
    return total
