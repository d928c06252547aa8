"""Property: the plan made with only the key digests `key_digests_wanted` names is the plan
made with every resource's digests, so the CLI and apply's converge loop load one blob per
resource whose source changed rather than one per record."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.plan import make_plan
from reconciler.plan.planner import key_digests_wanted
from reconciler.state.document import State
from tests.fixtures.properties import examples
from tests.unit.plan.factories import T0, desired, record, resource, state
from tests.unit.plan.test_planner_converges import NAMES, worlds


def _with_refs(s: State, previous: dict[str, dict[str, str]]) -> State:
    """Every record whose digests are known refers to a (notional) digests blob, as apply
    records them."""
    for name in previous:
        if name in s.resources:
            s = s.with_resource(s.resources[name].model_copy(update={"key_digests_ref": "d" * 64}))
    return s


@pytest.mark.property
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.sets(st.sampled_from(NAMES)))
def test_plan_with_only_the_wanted_key_digests_is_the_plan_with_all(
    world: Any, forced: set[str]
) -> None:
    d, s, lv, previous = world
    s = _with_refs(s, previous)
    force = sorted(forced & set(d.resources))
    wanted = key_digests_wanted(d, s, force)
    some = {name: digests for name, digests in previous.items() if name in wanted}
    full = make_plan(d, s, lv, created_at=T0, previous_key_digests=previous, force_replace=force)
    lean = make_plan(d, s, lv, created_at=T0, previous_key_digests=some, force_replace=force)
    assert lean == full


def test_a_resource_whose_spec_is_unchanged_needs_no_key_digests() -> None:
    want = resource("a", content="v1")
    same = record(want).model_copy(update={"key_digests_ref": "d" * 64})
    changed = record(resource("b", content="v1")).model_copy(update={"key_digests_ref": "d" * 64})
    d = desired(want, resource("b", content="v2"))
    s = state(same, changed)
    assert key_digests_wanted(d, s) == {"b"}
    assert key_digests_wanted(d, s, ["a"]) == {"a", "b"}
