"""When converge polls next: the backoff, cut short when a job is expected to end sooner.

A job's end is expected from the service's request counts (its pace since it was first seen
working), else from how long this project's jobs that already ended took (a pending job created
3 s ago, when jobs typically take 4 s, ends in about 1 s). A job past its expected end says no
more: the backoff applies, so a stuck job is not polled for at the floor forever. Polls never
come sooner than the floor (the project's initial interval) nor, for long jobs, sooner than a
twentieth of a typical job's run: a fleet of hour-long jobs polls at the backoff's pace, however
many of them end one after another. Pure: the jobs, what was seen of them before, and the time
arrive as values.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import datetime

from reconciler.live.snapshot import BatchStats, Live, LiveJob
from reconciler.state.document import JobState

Sighting = tuple[datetime, int]
"""When a job was first seen with requests done, and how many."""

TYPICAL_SHARE = 0.05
"""The shortest wait, as a share of a typical job's run: a job is collected at most this share
of its run late, and long jobs are not polled for every time one of them might end."""


def typical_run(jobs: Iterable[LiveJob]) -> float | None:
    """The median seconds from creation to end of the jobs in `jobs` that ended (None when
    none did): how long the next one is expected to take."""
    runs = [
        (job.end_time - job.create_time).total_seconds()
        for job in jobs
        if job.state.is_terminal and job.end_time is not None and job.create_time is not None
    ]
    runs = [run for run in runs if run >= 0]
    return statistics.median(runs) if runs else None


def first_sightings(previous: Mapping[str, Sighting], live: Live) -> dict[str, Sighting]:
    """`previous`, plus each job seen with requests done for the first time in `live`: its
    pace is measured from there, after its time in the queue."""
    seen = dict(previous)
    for job in live.jobs.values():
        if job.stats is not None and job.stats.done > 0:
            seen.setdefault(job.name, (live.observed_at, job.stats.done))
    return seen


def expected_end_in(
    job: LiveJob,
    observed: datetime,
    since: Sighting | None = None,
    typical: float | None = None,
) -> float | None:
    """Seconds after `observed` (when `job` was read) until a job not ended yet is expected to
    end; None when nothing says, or when it is already past the time it was expected to take.

    From its counts first: the pace since `since` (its first sighting with requests done) when
    the job has moved on from it; otherwise since it was created, which counts its pending time
    too and so guesses late rather than early. Without counts, a job is expected to take
    `typical` seconds from its creation (`typical_run`)."""
    by_counts = _end_by_counts(job, observed, since)
    if by_counts is not None or typical is None:
        return by_counts
    if job.state.is_terminal or job.create_time is None:
        return None
    left = typical - (observed - job.create_time).total_seconds()
    return left if left > 0 else None


def _end_by_counts(job: LiveJob, observed: datetime, since: Sighting | None) -> float | None:
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
    typical: float | None = None,
) -> float:
    """The wait from `now` before the next poll: `backoff`, or sooner when a job read at
    `observed` is expected to end before it -- never under `floor` (the project's initial poll
    interval) nor under `TYPICAL_SHARE` of `typical` (seconds a job of this project takes)."""
    sightings = sightings or {}
    ends = [
        end
        for job in jobs
        if (end := expected_end_in(job, observed, sightings.get(job.name), typical)) is not None
    ]
    if not ends:
        return backoff
    shortest = max(floor, (typical or 0.0) * TYPICAL_SHARE)
    since_read = max(0.0, (now - observed).total_seconds())
    return min(backoff, max(shortest, min(ends) - since_read))


def summed_stats(jobs: Iterable[LiveJob]) -> BatchStats | None:
    """The request counts over `jobs` (a resource's shards); None when none reported any."""
    reported = [job.stats for job in jobs if job.stats is not None]
    if not reported:
        return None
    total = BatchStats()
    for stats in reported:
        total = total + stats
    return total
