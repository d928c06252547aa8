"""Status of a sharded attempt speaks for all its jobs, not only the last one recorded."""

from __future__ import annotations

from reconciler.render.status import render_status_text, status_rows
from reconciler.state.document import JobState
from tests.unit.plan.factories import attempt, desired, job, live, record, resource, state


def test_sharded_attempt_shows_its_job_count_and_least_settled_state() -> None:
    res = resource(requests=10, shards={"max_requests": 4})
    shards = [attempt(res, 1, shard=i, state=JobState.SUCCEEDED) for i in range(3)]
    failed_then_rerun = attempt(res, 1, shard=1, rerun=1, state=JobState.RUNNING)
    rec = record(res, *shards, failed_then_rerun)
    lv = live(
        job(shards[0], state=JobState.SUCCEEDED),
        job(failed_then_rerun, state=JobState.RUNNING),
        job(shards[2], state=JobState.SUCCEEDED),
    )

    (row,) = status_rows(desired(res), state(rec), lv)

    assert (row.attempt, row.jobs) == (1, 3)
    assert (row.recorded, row.live) == (JobState.RUNNING, JobState.RUNNING)
    assert "1 (3 jobs)  RUNNING   RUNNING" in render_status_text((row,))
