"""Properties of the one rule ladder: refresh-only is the full plan filtered, never more."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from reconciler.plan import Action, ActionKind, Reason, make_plan
from tests.fixtures.properties import examples
from tests.unit.plan.factories import T0
from tests.unit.plan.test_planner_converges import worlds

REFRESH_ONLY = {ActionKind.ADOPT, ActionKind.REFRESH, ActionKind.COLLECT}


def _gist(action: Action) -> tuple[object, ...]:
    return (
        action.kind,
        action.reason,
        action.job_names,
        action.attempt,
        action.shards_given_up,
        action.detail,
    )


@pytest.mark.property
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_refresh_only_never_yields_a_job_creating_or_destructive_action(world: Any) -> None:
    d, s, lv, previous = world
    p = make_plan(d, s, lv, created_at=T0, previous_key_digests=previous, refresh_only=True)
    for action in p.actions:
        assert action.kind in REFRESH_ONLY or (
            action.kind is ActionKind.NOOP and action.reason is Reason.UP_TO_DATE
        ), action
        assert not action.kind.creates_job and action.diff == ()
        assert (action.jobs, action.requests, action.shards_to_create) == (0, 0, ())


@pytest.mark.property
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_refresh_only_does_what_the_full_plan_does_when_it_adopts_refreshes_or_collects(
    world: Any,
) -> None:
    d, s, lv, previous = world
    full = make_plan(d, s, lv, created_at=T0, previous_key_digests=previous)
    only = make_plan(d, s, lv, created_at=T0, previous_key_digests=previous, refresh_only=True)
    for action in full.actions:
        if action.kind in REFRESH_ONLY:
            mirrored = only.action_for(action.resource)
            assert mirrored is not None and _gist(mirrored) == _gist(action)


@pytest.mark.property
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_only_job_creating_actions_carry_a_workload_and_only_collects_give_shards_up(
    world: Any,
) -> None:
    d, s, lv, previous = world
    for action in make_plan(d, s, lv, created_at=T0, previous_key_digests=previous).actions:
        if not action.kind.creates_job:
            assert (action.jobs, action.requests, action.purpose) == (0, 0, None), action
            assert action.shards_to_create == ()
        if action.kind is not ActionKind.COLLECT:
            assert action.shards_given_up == ()
