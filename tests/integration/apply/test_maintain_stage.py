"""The maintain stage against the emulator: adopt a tagged job whose create was never recorded,
cancel and forget (with prune), and move results in place without a new job."""

from __future__ import annotations

from datetime import datetime

import pytest

from reconciler.apply.collect import collect
from reconciler.apply.context import ApplyContext, ApplyOptions
from reconciler.apply.create import create
from reconciler.apply.maintain import adopt, cancel_jobs, forget, imported_record, update
from reconciler.emulator import EmulatorHandle
from reconciler.live.snapshot import LiveFile
from reconciler.live.tags import IdentityTag, project_token
from reconciler.plan.actions import ActionKind
from reconciler.state.document import JobState
from tests.integration.apply.harness import (
    Stages,
    only,
    plan_now,
    result_lines,
    text_request,
    wait_settled,
)


def _file_spec(output: str = "results/eval.jsonl") -> str:
    return f"  model: gemini-2.5-flash\n  source:\n    file: data/eval.jsonl\n  output: {output}\n"


async def _create_planned(context: ApplyContext) -> None:
    live, plan = await plan_now(context, include_files=True)
    await create(context, only(plan, ActionKind.CREATE, "eval"), live)


def test_adopt_stage_records_a_tagged_job_whose_create_was_never_recorded(
    stages: Stages,
) -> None:
    stages.jsonl("data/eval.jsonl", ["k0"])
    stages.manifest("eval", _file_spec())

    async def crash_after_create_then_adopt(context: ApplyContext) -> str:
        resource = context.resource("eval")
        # What a run killed between the create call and its state write leaves behind.
        token = project_token(context.store.state.identity)
        tag = IdentityTag("eval", resource.spec_hash, 1, project=token)
        job = await context.adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name=tag.display_name(None),
            inline_requests=[{"key": "k0", "request": text_request("hi")}],
        )
        live, plan = await plan_now(context)
        await adopt(context, only(plan, ActionKind.ADOPT, "eval"), live)
        return job.name

    job_name = stages.run(crash_after_create_then_adopt)

    record = stages.state.resources["eval"]
    (attempt,) = record.attempts
    assert (attempt.number, attempt.job_name) == (1, job_name)
    assert record.spec_hash == stages.run(lambda c: _spec_hash(c, "eval"))
    assert stages.emulator.calls()["batches.create_generate"] == 1, "adopted, not created again"


async def _spec_hash(context: ApplyContext, name: str) -> str:
    return context.resource(name).spec_hash


@pytest.fixture
def slow_jobs(emulator: EmulatorHandle) -> None:
    emulator.configure(job_seconds=3600.0)


@pytest.mark.usefixtures("slow_jobs")
def test_cancel_stage_cancels_the_running_job_and_forget_prunes_its_files(
    stages: Stages,
) -> None:
    stages.jsonl("data/eval.jsonl", ["k0", "k1"])
    stages.manifest("eval", _file_spec())
    stages.run(_create_planned)
    (created,) = stages.state.resources["eval"].attempts
    stages.remove_manifest("eval")
    stages.options = ApplyOptions(wait=False, prune=True)

    async def cancel_and_forget(
        context: ApplyContext,
    ) -> tuple[tuple[JobState, datetime | None], tuple[JobState | None, LiveFile | None]]:
        _, plan = await plan_now(context)
        action = only(plan, ActionKind.CANCEL, "eval")
        await cancel_jobs(context, action.resource, action.job_names)
        cancelled = context.store.state.resources["eval"].attempts[0]
        await forget(context, action)
        job = await context.adapter.get_job(created.job_name or "")
        input_file = await context.adapter.get_file(created.input_file or "")
        return (cancelled.state, cancelled.ended_at), (job.state if job else None, input_file)

    (recorded, ended_at), (live_state, input_file) = stages.run(cancel_and_forget)

    assert recorded is JobState.CANCELLED and ended_at == stages.clock.now()
    assert live_state is JobState.CANCELLED
    assert input_file is None, "--prune deletes the uploaded input"
    assert "eval" not in stages.state.resources
    steps = [e.message for e in stages.reporter.events if e.kind.value == "step"]
    assert f"cancelled {created.job_name}" in steps and "forgotten" in steps


def test_update_stage_moves_results_to_a_new_output_without_a_new_job(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0", "k1", "k2"])
    stages.manifest("eval", _file_spec())

    async def create_and_collect(context: ApplyContext) -> None:
        await _create_planned(context)
        await wait_settled(context)
        live, plan = await plan_now(context)
        await collect(context, only(plan, ActionKind.COLLECT, "eval"), live)

    stages.run(create_and_collect)
    before = stages.state.resources["eval"].results
    assert before is not None
    stages.manifest("eval", _file_spec("moved/eval.jsonl"))

    async def move(context: ApplyContext) -> None:
        _, plan = await plan_now(context)
        await update(context, only(plan, ActionKind.UPDATE, "eval"))

    stages.run(move)

    record = stages.state.resources["eval"]
    assert record.results is not None and record.results.location == "moved/eval.jsonl"
    assert record.results.sha256 == before.sha256
    assert [line["key"] for line in result_lines(stages.root / "moved/eval.jsonl")] == [
        "k0",
        "k1",
        "k2",
    ]
    assert stages.emulator.calls()["batches.create_generate"] == 1
    assert stages.run(lambda context: _planned_kinds(context)) == [ActionKind.NOOP]


async def _planned_kinds(context: ApplyContext) -> list[ActionKind]:
    _, plan = await plan_now(context)
    return [a.kind for a in plan.actions]


def test_imported_job_becomes_the_next_attempt_of_an_existing_record(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0"])
    stages.manifest("eval", _file_spec())
    stages.run(_create_planned)

    async def import_another(context: ApplyContext) -> None:
        resource = context.resource("eval")
        job = await context.adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="made by hand",
            inline_requests=[{"key": "k0", "request": text_request("hi")}],
        )
        existing = context.store.state.resources["eval"]
        record, number = imported_record(existing, resource, job, context.clock.now())
        assert number == 2
        assert record.attempts[:1] == existing.attempts
        assert record.attempts[1].job_name == job.name
        assert record.attempts[1].tag == str(IdentityTag("eval", resource.spec_hash, 2))

    stages.run(import_another)
