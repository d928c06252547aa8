"""The create stage against the emulator: intents first, shards with their stored keys, and
uploads reused while the service still has them."""

from __future__ import annotations

import pytest

from reconciler.apply.context import ApplyContext
from reconciler.apply.create import AMBIGUOUS_LOOKUP_DELAYS, create
from reconciler.apply.events import EventKind
from reconciler.errors import ServiceError, TransientServiceError
from reconciler.live.tags import parse_tag
from reconciler.plan.actions import ActionKind
from reconciler.state.document import JobState
from reconciler.state.request_keys import load_request_keys
from tests.integration.apply.harness import Stages, only, plan_now, wait_settled

INLINE = (
    "  model: gemini-2.5-flash\n  source:\n    requests:\n"
    "      - {key: a, request: {contents: [{parts: [{text: 'one'}]}]}}\n"
    "      - {key: b, request: {contents: [{parts: [{text: 'two'}]}]}}\n"
    "  output: results/inline.jsonl\n"
)


def _file_spec(output: str = "results/eval.jsonl", extra: str = "") -> str:
    return f"  model: gemini-2.5-flash\n  source:\n    file: data/eval.jsonl\n  output: {output}\n{extra}"


async def _create_planned(context: ApplyContext, name: str, kind: ActionKind) -> None:
    live, plan = await plan_now(context, include_files=True)
    await create(context, only(plan, kind, name), live)


def test_create_stage_records_intent_before_job_exists(stages: Stages) -> None:
    stages.manifest("inline", INLINE)

    async def create_while_the_service_fails(context: ApplyContext) -> None:
        live, plan = await plan_now(context)
        stages.emulator.configure(rate_503=1.0)  # every call fails: the create never lands
        await create(context, only(plan, ActionKind.CREATE, "inline"), live)

    with pytest.raises(ServiceError):
        stages.run(create_while_the_service_fails)

    (intent,) = stages.state.resources["inline"].attempts
    assert intent.job_name is None and intent.state is JobState.UNKNOWN
    assert intent.request_count == 2
    tag = parse_tag(intent.tag)
    assert tag is not None and (tag.resource, tag.attempt) == ("inline", 1)
    assert stages.emulator.calls()["batches.create_generate"] >= 1


def test_create_stage_records_the_created_job_on_its_intent(stages: Stages) -> None:
    stages.manifest("inline", INLINE)

    stages.run(lambda context: _create_planned(context, "inline", ActionKind.CREATE))

    (attempt,) = stages.state.resources["inline"].attempts
    assert attempt.job_name is not None and attempt.job_name.startswith("batches/")
    assert attempt.created_at is not None
    assert any("created " + attempt.job_name in line for line in stages_steps(stages))


def test_create_stage_splits_into_shards_and_stores_each_shards_keys(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", [f"k{i}" for i in range(5)])
    stages.manifest("eval", _file_spec(extra="  shards:\n    max_requests: 2\n"))

    stages.run(lambda context: _create_planned(context, "eval", ActionKind.CREATE))

    attempts = sorted(stages.state.resources["eval"].attempts, key=lambda a: a.shard or 0)
    assert [a.shard for a in attempts] == [0, 1, 2]
    assert all(a.job_name is not None for a in attempts)
    stored = [load_request_keys(stages.backend, a.request_keys_file or "") for a in attempts]
    assert stored == [["k0", "k1"], ["k2", "k3"], ["k4"]]
    assert stages.emulator.calls()["batches.create_generate"] == 3


def test_create_stage_resubmits_a_failed_job_reusing_its_uploaded_input(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", ["k0", "k1"])
    stages.manifest("eval", _file_spec())
    stages.emulator.configure(fail_next_jobs=1)
    stages.run(lambda context: _create_planned(context, "eval", ActionKind.CREATE))
    uploads = stages.emulator.calls()["files.upload_start"]

    async def resubmit(context: ApplyContext) -> None:
        await wait_settled(context)
        await _create_planned(context, "eval", ActionKind.RESUBMIT)

    stages.run(resubmit)

    first, second = stages.state.resources["eval"].attempts
    assert first.state is JobState.FAILED, "how the first job ended is recorded first"
    assert second.number == 2 and second.job_name not in (None, first.job_name)
    assert second.input_file == first.input_file
    assert stages.emulator.calls()["files.upload_start"] == uploads


def stages_steps(stages: Stages) -> list[str]:
    return [e.message for e in stages.reporter.events if e.kind.value == "step"]


def test_create_stage_resolves_an_unclear_create_in_the_same_run(stages: Stages) -> None:
    """A create whose connection drops is looked up by its tag; the service shows no such job,
    so it is sent again once, and exactly one job exists."""
    stages.manifest("inline", INLINE)

    async def create_through_a_drop(context: ApplyContext) -> int:
        live, plan = await plan_now(context)
        # Seed 1 draws 0.134 first: the create's connection drops; the draws after it pass.
        stages.emulator.configure(drop_rate=0.4, seed=1)
        await create(context, only(plan, ActionKind.CREATE, "inline"), live)
        stages.emulator.configure(drop_rate=0.0)
        return len((await context.adapter.snapshot(include_files=False)).jobs)

    assert stages.run(create_through_a_drop) == 1
    (attempt,) = stages.state.resources["inline"].attempts
    assert attempt.job_name is not None
    assert stages.emulator.calls()["batches.create_generate"] == 2
    warnings = stages.reporter.messages(EventKind.WARNING)
    assert any("the service shows no such job" in w for w in warnings)
    assert len(stages.clock.sleeps) >= len(AMBIGUOUS_LOOKUP_DELAYS)


def test_create_stage_fails_an_unresolvable_create_with_its_intent_kept(stages: Stages) -> None:
    stages.manifest("inline", INLINE)

    async def create_while_dropping(context: ApplyContext) -> None:
        live, plan = await plan_now(context)
        stages.emulator.configure(drop_rate=1.0)
        await create(context, only(plan, ActionKind.CREATE, "inline"), live)

    with pytest.raises(TransientServiceError) as caught:
        stages.run(create_while_dropping)
    assert caught.value.ambiguous
    (intent,) = stages.state.resources["inline"].attempts
    assert intent.is_intent, "the next run adopts or creates it from the recorded intent"
    assert stages.emulator.calls()["batches.create_generate"] == 1
