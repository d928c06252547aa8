"""The converge stage against the emulator, on a FakeClock: it collects what finishes while it
waits, resubmits per policy, fails what policy gives up on, and stops at the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from reconciler.apply.capacity import CapacityQueue
from reconciler.apply.context import ApplyContext, ApplyOptions
from reconciler.apply.converge import converge
from reconciler.apply.create import create
from reconciler.apply.events import CollectingReporter, Event, EventKind, Phase
from reconciler.apply.executor import dispatch
from reconciler.clock import FakeClock
from reconciler.live.snapshot import Live
from reconciler.plan.actions import Action, ActionKind
from reconciler.state.document import JobState
from tests.integration.apply.harness import Stages, only, plan_now, result_lines, wait_settled


def _file_spec(extra: str = "") -> str:
    return (
        "  model: gemini-2.5-flash\n  source:\n    file: data/eval.jsonl\n"
        f"  output: results/eval.jsonl\n{extra}"
    )


async def _create_then_converge(context: ApplyContext) -> None:
    live, plan = await plan_now(context, include_files=True)
    await create(context, only(plan, ActionKind.CREATE, "eval"), live)

    async def execute(actions: Sequence[Action], live: Live) -> None:
        for action in actions:
            await dispatch(context, action, live)

    async def run_one(action: Action, live: Live) -> None:
        await dispatch(context, action, live)

    await converge(context, context.clock.monotonic(), execute, CapacityQueue(), run_one)


def test_converge_collects_a_job_that_finishes_while_waiting(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0", "k1"])
    stages.manifest("eval", _file_spec())
    stages.options = ApplyOptions(wait=True)

    stages.run(_create_then_converge)

    record = stages.state.resources["eval"]
    assert record.results is not None and record.results.succeeded == 2
    assert [line["key"] for line in result_lines(stages.root / "results/eval.jsonl")] == [
        "k0",
        "k1",
    ]
    progress = [e for e in stages.reporter.events if e.kind is EventKind.PROGRESS]
    assert progress and progress[-1].message == "0 job(s) still running"
    # Waits back off from the initial poll interval and never exceed the maximum.
    assert all(0.1 <= pause <= 0.5 for pause in stages.clock.sleeps)


def test_converge_resubmits_a_failed_job_per_policy_and_collects_it(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0"])
    stages.manifest("eval", _file_spec())
    stages.options = ApplyOptions(wait=True)
    stages.emulator.configure(fail_next_jobs=1)

    stages.run(_create_then_converge)

    record = stages.state.resources["eval"]
    assert [a.state for a in record.attempts] == [JobState.FAILED, JobState.SUCCEEDED]
    assert record.results is not None and record.results.from_attempts == (2,)


def test_converge_fails_a_resource_whose_job_failed_and_policy_gives_up(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0"])
    stages.manifest("eval", _file_spec("  policy:\n    resubmit: []\n"))
    stages.options = ApplyOptions(wait=True)
    stages.emulator.configure(fail_next_jobs=1)

    report = stages.run(lambda context: _converged_report(context))

    assert list(report) == ["eval"]
    assert "not resubmitted because" in str(report["eval"])
    assert stages.state.resources["eval"].results is None
    assert stages.emulator.calls()["batches.create_generate"] == 1


async def _converged_report(context: ApplyContext) -> dict[str, object]:
    await _create_then_converge(context)
    return dict(context.report.failures)


def test_converge_stops_at_the_timeout_and_names_what_still_runs(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0"])
    stages.manifest("eval", _file_spec())
    stages.options = ApplyOptions(wait=True, timeout_seconds=5.0)
    stages.emulator.configure(job_seconds=3600.0)

    unsettled = stages.run(lambda context: _unsettled_after_converge(context))

    assert unsettled == ["eval"]
    assert stages.clock.monotonic() == 5.0, "the last wait is cut to the time left"
    warnings = [e.message for e in stages.reporter.events if e.kind is EventKind.WARNING]
    assert warnings == [
        "stopped waiting after 5s; still running: eval. The next `reconciler apply` collects them."
    ]


async def _unsettled_after_converge(context: ApplyContext) -> list[str]:
    await _create_then_converge(context)
    return context.report.unsettled


class _SleepsAtPhase(CollectingReporter):
    """Notes how many waits the clock had taken when each resource settled."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.sleeps_when_collected: int | None = None

    def emit(self, event: Event) -> None:
        super().emit(event)
        if event.phase is Phase.COLLECTED:
            self.sleeps_when_collected = len(self.clock.sleeps)


def test_converge_ends_right_after_the_last_result_is_collected_without_another_wait(
    stages: Stages,
) -> None:
    stages.jsonl("data/eval.jsonl", ["k0", "k1"])
    stages.manifest("eval", _file_spec())
    stages.options = ApplyOptions(wait=True)
    reporter = _SleepsAtPhase(stages.clock)
    stages.reporter = reporter

    stages.run(_create_then_converge)

    assert stages.state.resources["eval"].results is not None
    assert reporter.sleeps_when_collected is not None
    assert len(stages.clock.sleeps) == reporter.sleeps_when_collected, "no wait after collecting"
    phases = reporter.phases("eval")
    assert phases[:3] == [Phase.PREPARING, Phase.UPLOADING, Phase.CREATING]
    assert phases[-1] is Phase.COLLECTED


class _ListingsAtPhase(CollectingReporter):
    """Notes how many job listings the emulator had answered when each resource settled."""

    def __init__(self, stages: Stages) -> None:
        super().__init__()
        self.stages = stages
        self.listings_when_collected: int | None = None

    def emit(self, event: Event) -> None:
        super().emit(event)
        if event.phase is Phase.COLLECTED:
            self.listings_when_collected = self.stages.emulator.calls()["batches.list"]


def test_converge_settles_after_the_last_collect_without_listing_the_jobs_again(
    stages: Stages,
) -> None:
    stages.jsonl("data/eval.jsonl", ["k0"])
    stages.manifest("eval", _file_spec())
    stages.options = ApplyOptions(wait=True)
    reporter = _ListingsAtPhase(stages)
    stages.reporter = reporter

    stages.run(_create_then_converge)

    assert stages.state.resources["eval"].results is not None
    # Jobs that ended do not change: the re-plan after a round of collects alone uses that
    # round's listing.
    assert reporter.listings_when_collected == stages.emulator.calls()["batches.list"]


def test_converge_keeps_polling_while_a_collect_is_under_way(stages: Stages) -> None:
    stages.jsonl("data/quick.jsonl", ["q0"])
    stages.jsonl("data/slow.jsonl", ["s0"])
    stages.manifest("quick", _file_spec().replace("eval", "quick"))
    stages.manifest("slow", _file_spec().replace("eval", "slow"))
    stages.options = ApplyOptions(wait=True, timeout_seconds=30.0)

    async def body(context: ApplyContext) -> list[str]:
        live, plan = await plan_now(context, include_files=True)
        await create(context, only(plan, ActionKind.CREATE, "quick"), live)
        await wait_settled(context)
        stages.emulator.configure(job_seconds=3600.0)
        await create(context, only(plan, ActionKind.CREATE, "slow"), live)
        rounds = 0

        async def execute(actions: Sequence[Action], live: Live) -> None:
            nonlocal rounds
            rounds += 1
            for action in actions:
                await dispatch(context, action, live)

        async def run_one(action: Action, live: Live) -> None:
            # Held until converge has polled twice more: a converge that waited for its
            # collects before polling again would never get there.
            async with asyncio.timeout(20):
                while rounds < 3:
                    await asyncio.sleep(0.01)
            await dispatch(context, action, live)

        await converge(context, context.clock.monotonic(), execute, CapacityQueue(), run_one)
        return context.report.unsettled

    unsettled = stages.run(body)

    assert stages.state.resources["quick"].results is not None
    assert unsettled == ["slow"]
