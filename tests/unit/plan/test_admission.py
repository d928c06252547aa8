"""plan/admission.py: which new jobs start now under the concurrent-job limit, in which order."""

from __future__ import annotations

from reconciler.plan import make_plan
from reconciler.plan.actions import Action
from reconciler.plan.admission import TokenBudget, admission_order, admit
from reconciler.plan.limits import ServiceLimits
from tests.unit.plan.factories import T0, attempt, desired, job, live, record, resource, state


def _creates(*resources_: object) -> tuple[dict[str, object], list[Action]]:
    wanted = desired(*resources_)  # type: ignore[arg-type]
    plan = make_plan(wanted, state(), live(), created_at=T0)
    return dict(wanted.resources), list(plan.actions)


def test_higher_priority_goes_first_then_manifest_order() -> None:
    resources, actions = _creates(
        resource("c-low"),
        resource("a-urgent", config={"priority": 10}),
        resource("b-low"),
        resource("d-negative", config={"priority": -1}),
    )
    ordered = admission_order(actions, resources)  # type: ignore[arg-type]
    assert [a.resource for a in ordered] == ["a-urgent", "c-low", "b-low", "d-negative"]


def test_admit_stops_at_the_first_action_that_does_not_fit() -> None:
    resources, actions = _creates(
        resource("one"),
        resource("sharded", requests=6, shards={"max_requests": 2}),
        resource("two"),
    )
    ordered = admission_order(actions, resources)  # type: ignore[arg-type]
    assert [a.jobs for a in ordered] == [1, 3, 1]
    admitted, waiting = admit(ordered, free=3, limit=5)
    assert [a.resource for a in admitted] == ["one"]
    assert [a.resource for a in waiting] == ["sharded", "two"]


def test_an_action_larger_than_the_limit_starts_alone_when_all_is_free() -> None:
    resources, actions = _creates(resource("big", requests=8, shards={"max_requests": 1}))
    ordered = admission_order(actions, resources)  # type: ignore[arg-type]
    assert admit(ordered, free=3, limit=4) == ([], ordered)
    assert admit(ordered, free=4, limit=4) == (ordered, [])


def test_a_model_past_its_token_budget_waits_while_other_models_start() -> None:
    resources, actions = _creates(
        resource("flash-a", size=4_000),
        resource("flash-b", size=4_000),
        resource("pro", model="gemini-2.5-pro", size=4_000),
        resource("flash-c", size=400),
    )
    ordered = admission_order(actions, resources)  # type: ignore[arg-type]
    budget = TokenBudget(limits={"gemini-2.5-flash": 1_500})
    admitted, waiting = admit(ordered, free=10, limit=10, tokens=budget)
    assert [a.resource for a in admitted] == ["flash-a", "pro"]
    # flash-c would fit the tokens left, but does not overtake flash-b: priority is kept.
    assert [a.resource for a in waiting] == ["flash-b", "flash-c"]


def test_tokens_already_enqueued_at_the_service_count_against_the_budget() -> None:
    resources, actions = _creates(resource("flash", size=4_000))
    ordered = admission_order(actions, resources)  # type: ignore[arg-type]
    full = TokenBudget(used={"gemini-2.5-flash": 600}, limits={"gemini-2.5-flash": 1_500})
    assert admit(ordered, free=10, limit=10, tokens=full) == ([], ordered)
    empty = TokenBudget(used={}, limits={"gemini-2.5-flash": 1_500})
    assert admit(ordered, free=10, limit=10, tokens=empty) == (ordered, [])


def test_plan_counts_the_waves_the_token_budget_takes() -> None:
    wanted = desired(*(resource(f"r{i}", size=4_000) for i in range(5)))
    plan = make_plan(
        wanted,
        state(),
        live(),
        created_at=T0,
        limits=ServiceLimits(enqueued_tokens={"gemini-2.5-flash": 2_000}),
    )
    assert plan.admission is not None
    assert (plan.admission.start_now, plan.admission.waiting, plan.admission.waves) == (2, 3, 2)


def test_running_inline_jobs_hold_their_sources_tokens_though_no_upload_is_recorded() -> None:
    running = resource("inline", size=4_000)
    att = attempt(running, 1)
    inline_record = record(running, att).model_copy(update={"input": None})
    wanted = desired(running, resource("new", size=4_000))
    plan = make_plan(
        wanted,
        state(inline_record),
        live(job(att)),
        created_at=T0,
        limits=ServiceLimits(enqueued_tokens={"gemini-2.5-flash": 1_500}),
    )
    assert plan.admission is not None
    (fit,) = plan.admission.tokens
    assert (fit.enqueued, fit.start_now, fit.waiting) == (1_000, 0, 1_000)
