"""Switching a project's endpoint (`gemini` to `vertex`): a job recorded on the old endpoint is
out of sight, not gone, and the plan says so; what was collected there stays as it is."""

from __future__ import annotations

from dataclasses import replace

from reconciler.live.snapshot import Live
from reconciler.plan import ActionKind, Reason
from reconciler.state.document import JobState
from tests.unit.plan.factories import (
    attempt,
    desired,
    live,
    only,
    plan,
    record,
    resource,
    results,
    state,
)


def _on(snapshot: Live, endpoint: str) -> Live:
    return replace(snapshot, endpoint=endpoint)


def test_an_uncollected_job_of_the_old_endpoint_runs_again_on_the_new_one_and_says_why() -> None:
    res = resource()
    running = attempt(res, 1, state=JobState.RUNNING).model_copy(update={"endpoint": "gemini"})

    action = only(plan(desired(res), state(record(res, running)), _on(live(), "vertex")))

    assert (action.kind, action.reason) == (ActionKind.RECREATE, Reason.ENDPOINT_CHANGED)
    assert "ran on gemini" in action.detail and "on vertex" in action.detail
    assert action.next_attempt == 2


def test_an_attempt_recorded_before_endpoints_were_recorded_counts_as_gemini() -> None:
    res = resource()
    running = attempt(res, 1, state=JobState.RUNNING)
    assert running.endpoint is None

    on_vertex = only(plan(desired(res), state(record(res, running)), _on(live(), "vertex")))
    on_gemini = only(plan(desired(res), state(record(res, running)), _on(live(), "gemini")))

    assert on_vertex.reason is Reason.ENDPOINT_CHANGED
    assert on_gemini.reason is Reason.JOB_GONE


def test_results_collected_on_the_old_endpoint_are_kept_and_nothing_runs_again() -> None:
    res = resource()
    done = attempt(res, 1, state=JobState.SUCCEEDED).model_copy(update={"endpoint": "gemini"})
    rec = record(res, done, results=results(res))

    action = only(plan(desired(res), state(rec), _on(live(), "vertex")))

    assert (action.kind, action.reason) == (ActionKind.NOOP, Reason.RESULTS_COLLECTED)
