"""A collect's cleanup against the emulator: no delete the service is known to refuse is sent
(its results files are recorded as left to expire with the results), the deletes that can go run
after the collect has returned (they hold no parallelism slot), and the run waits for them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from reconciler.apply.cleanup import LEFT_TO_EXPIRE
from reconciler.apply.collect import collect
from reconciler.apply.context import ApplyContext
from reconciler.apply.create import create
from reconciler.apply.events import EventKind
from reconciler.config import Cleanup
from reconciler.errors import ReconcilerError
from reconciler.plan.actions import ActionKind, Plan
from reconciler.state.document import JobAttempt
from tests.integration.apply.harness import Stages, only, plan_now, wait_settled

SPEC = (
    "  model: gemini-2.5-flash\n  source:\n    file: data/eval.jsonl\n"
    "  output: results/eval.jsonl\n"
)


async def _create_and_settle(context: ApplyContext) -> None:
    live, plan = await plan_now(context, include_files=True)
    await create(context, only(plan, ActionKind.CREATE, "eval"), live)
    await wait_settled(context)


async def _collect_and_plan(context: ApplyContext) -> Plan:
    live, plan = await plan_now(context)
    await collect(context, only(plan, ActionKind.COLLECT, "eval"), live)
    await context.background.drain()
    return (await plan_now(context))[1]


def _attempt(stages: Stages) -> JobAttempt:
    (attempt,) = stages.state.resources["eval"].attempts
    return attempt


def _service_files(stages: Stages) -> set[str]:
    async def listed(context: ApplyContext) -> set[str]:
        return set((await context.adapter.snapshot(include_files=True)).files)

    return stages.run(listed)


def _project(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0", "k1"])
    stages.manifest("eval", SPEC)
    stages.run(_create_and_settle)
    stages.emulator.reset_calls()


def test_a_results_file_the_service_refuses_to_delete_is_left_to_expire_without_a_call(
    stages: Stages,
) -> None:
    _project(stages)

    after = stages.run(_collect_and_plan)

    attempt = _attempt(stages)
    assert attempt.output_file is not None and attempt.output_file.startswith("files/batch-")
    assert attempt.output_kept == LEFT_TO_EXPIRE and attempt.output_deleted_at is None
    assert attempt.input_deleted_at is not None
    # One delete went out, the input's; none for the results file, which stays at the service.
    assert stages.emulator.calls().get("files.delete") == 1
    assert _service_files(stages) == {attempt.output_file}
    # Nothing is left for a later run: the plan lists no delete, so the next apply sends none.
    assert after.cleanup == ()
    steps = [e.message for e in stages.reporter.events if e.resource == "eval"]
    assert f"results file {attempt.output_file} left to expire" in steps


def test_a_results_file_the_service_deletes_is_deleted(stages: Stages) -> None:
    stages.emulator.configure(undeletable_result_files=False)
    _project(stages)

    after = stages.run(_collect_and_plan)

    attempt = _attempt(stages)
    assert attempt.output_deleted_at is not None and attempt.output_kept is None
    assert stages.emulator.calls().get("files.delete") == 2
    assert _service_files(stages) == set()
    assert after.cleanup == ()


def test_with_results_cleanup_off_nothing_is_recorded_of_the_results_file(
    stages: Stages,
) -> None:
    config = stages.project.config.model_copy(update={"cleanup": Cleanup(results=False)})
    stages.project = replace(stages.project, config=config)
    _project(stages)

    stages.run(_collect_and_plan)

    attempt = _attempt(stages)
    assert attempt.output_kept is None and attempt.output_deleted_at is None
    assert attempt.input_deleted_at is not None


def test_a_collect_returns_before_its_deletes_and_the_run_waits_for_them(
    stages: Stages,
) -> None:
    _project(stages)
    seen: dict[str, Any] = {}

    async def body(context: ApplyContext) -> None:
        live, plan = await plan_now(context)
        adapter: Any = context.adapter
        released = asyncio.Event()
        delete = adapter.delete_file

        async def held_delete(name: str) -> None:
            await released.wait()
            await delete(name)

        adapter.delete_file = held_delete
        async with asyncio.timeout(20):
            await collect(context, only(plan, ActionKind.COLLECT, "eval"), live)
            # The collect has returned, its slot free: the results are recorded, the input
            # not deleted yet.
            record = context.store.state.resources["eval"]
            seen["results"] = record.results
            seen["input_deleted_at"] = record.attempts[0].input_deleted_at
            released.set()
            await context.background.drain()

    stages.run(body)

    assert seen["results"] is not None and seen["input_deleted_at"] is None
    assert _attempt(stages).input_deleted_at is not None


def test_a_cleanup_that_fails_in_the_background_warns_and_fails_no_resource(
    stages: Stages,
) -> None:
    _project(stages)

    async def body(context: ApplyContext) -> None:
        live, plan = await plan_now(context)
        adapter: Any = context.adapter

        async def broken_delete(name: str) -> None:
            raise ReconcilerError(f"cannot reach the disk holding {name}")

        adapter.delete_file = broken_delete
        await collect(context, only(plan, ActionKind.COLLECT, "eval"), live)
        await context.background.drain()
        assert context.report.failures == {}

    stages.run(body)

    assert _attempt(stages).input_deleted_at is None
    warnings = [e.message for e in stages.reporter.events if e.kind is EventKind.WARNING]
    assert any("cleanup of attempt 1 failed: cannot reach the disk" in w for w in warnings)
