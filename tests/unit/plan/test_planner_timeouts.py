"""policy.timeout: a job that waits past it is cancelled and replaced, within max_attempts."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from reconciler.plan import Action, ActionKind, Reason, make_plan
from reconciler.state.document import JobAttempt, JobState
from tests.unit.plan.factories import T0, attempt, desired, job, live, record, resource, state

# `live()` observes the service two hours after the jobs were created (T0).


def plan_one(
    policy: Mapping[str, object], job_state: JobState, *earlier: int
) -> tuple[Action, JobAttempt]:
    res = resource(policy=dict(policy))
    attempts = [attempt(res, n, state=JobState.FAILED) for n in earlier]
    current = attempt(res, len(earlier) + 1, state=job_state)
    planned = make_plan(
        desired(res),
        state(record(res, *attempts, current)),
        live(job(current, state=job_state)),
        created_at=T0,
    )
    (action,) = planned.actions
    return action, current


@pytest.mark.parametrize(
    ("timeout", "job_state"),
    [({"pending": "1h"}, JobState.PENDING), ({"total": "90m"}, JobState.RUNNING)],
)
def test_a_job_past_its_timeout_is_cancelled_and_replaced(
    timeout: dict[str, str], job_state: JobState
) -> None:
    action, current = plan_one({"timeout": timeout}, job_state)
    assert action.kind is ActionKind.REPLACE and action.reason is Reason.JOB_STUCK
    assert action.job_names == (current.job_name,) and action.cancel_first
    assert action.next_attempt == 2
    assert "past policy.timeout" in action.detail


def test_a_replacement_runs_on_the_fallback_model() -> None:
    policy = {"timeout": {"pending": "1h"}, "fallback_model": "gemini-2.5-flash-lite"}
    action, _ = plan_one(policy, JobState.PENDING)
    assert action.model == "gemini-2.5-flash-lite"
    assert action.detail.endswith("on gemini-2.5-flash-lite")


@pytest.mark.parametrize(
    ("timeout", "job_state"),
    [
        ({"pending": "3h"}, JobState.PENDING),  # not past it yet
        ({"pending": "1h"}, JobState.RUNNING),  # started: `pending` no longer applies
    ],
)
def test_a_job_within_its_timeout_is_left_to_run(
    timeout: dict[str, str], job_state: JobState
) -> None:
    action, _ = plan_one({"timeout": timeout}, job_state)
    assert action.kind is ActionKind.REFRESH


def test_a_stuck_job_is_left_to_run_once_attempts_are_spent() -> None:
    action, _ = plan_one({"timeout": {"pending": "1h"}, "max_attempts": 2}, JobState.PENDING, 1)
    assert action.kind is ActionKind.REFRESH
