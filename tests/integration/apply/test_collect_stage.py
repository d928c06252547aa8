"""The collect stage against the emulator: results written and recorded, partial re-runs merged
into the previous copy in input order, and a given-up shard's requests recorded as failed."""

from __future__ import annotations

import hashlib

from reconciler.apply.collect import collect
from reconciler.apply.context import ApplyContext
from reconciler.apply.create import create
from reconciler.plan.actions import ActionKind
from reconciler.state.document import AttemptPurpose, JobState
from tests.integration.apply.harness import (
    Stages,
    only,
    plan_now,
    result_lines,
    wait_settled,
)

KEYS = [f"q{i}" for i in range(8)]


def _file_spec(extra: str = "") -> str:
    return (
        "  model: gemini-2.5-flash\n  source:\n    file: data/eval.jsonl\n"
        f"  output: results/eval.jsonl\n{extra}"
    )


async def _create_then_settle(context: ApplyContext, kind: ActionKind) -> None:
    live, plan = await plan_now(context, include_files=True)
    await create(context, only(plan, kind, "eval"), live)
    await wait_settled(context)


async def _collect_planned(context: ApplyContext) -> None:
    live, plan = await plan_now(context)
    await collect(context, only(plan, ActionKind.COLLECT, "eval"), live)


def test_collect_stage_writes_results_and_records_their_location(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", KEYS)
    stages.manifest("eval", _file_spec())
    stages.run(lambda context: _create_then_settle(context, ActionKind.CREATE))

    stages.run(_collect_planned)

    output = stages.root / "results/eval.jsonl"
    assert [line["key"] for line in result_lines(output)] == KEYS
    results = stages.state.resources["eval"].results
    assert results is not None
    assert results.location == "results/eval.jsonl" and results.from_attempts == (1,)
    assert (results.succeeded, results.failed) == (8, 0)
    assert results.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert results.collected_at == stages.clock.now()


def test_collect_stage_merges_rerun_results_in_input_order(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", KEYS)
    stages.manifest("eval", _file_spec("  policy:\n    retry_failed_requests: 1\n"))
    stages.emulator.configure(request_error_rate=0.5)
    stages.run(lambda context: _create_then_settle(context, ActionKind.CREATE))
    stages.run(_collect_planned)
    first = stages.state.resources["eval"].results
    assert first is not None and 0 < first.failed < 8, "the seed must fail some requests"

    stages.emulator.configure(request_error_rate=0.0)
    stages.run(lambda context: _create_then_settle(context, ActionKind.RESUBMIT))
    retry = stages.state.resources["eval"].attempts[-1]
    assert retry.purpose is AttemptPurpose.RETRY_FAILED and retry.request_count == first.failed
    stages.run(_collect_planned)

    lines = result_lines(stages.root / "results/eval.jsonl")
    assert [line["key"] for line in lines] == KEYS
    assert all("response" in line for line in lines)
    results = stages.state.resources["eval"].results
    assert results is not None
    assert (results.succeeded, results.failed, results.from_attempts) == (8, 0, (1, 2))


def test_collect_stage_records_a_given_up_shards_requests_as_failed(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", KEYS)
    stages.manifest(
        "eval",
        _file_spec("  shards:\n    max_requests: 4\n  policy:\n    resubmit: []\n"),
    )
    stages.emulator.configure(fail_next_jobs=1)
    stages.run(lambda context: _create_then_settle(context, ActionKind.CREATE))

    stages.run(_collect_planned)

    attempts = {a.shard: a for a in stages.state.resources["eval"].attempts}
    (failed_shard,) = [s for s, a in attempts.items() if a.state is JobState.FAILED]
    failed_keys = KEYS[:4] if failed_shard == 0 else KEYS[4:]
    lines = result_lines(stages.root / "results/eval.jsonl")
    assert [line["key"] for line in lines] == KEYS
    errors = {line["key"]: line["error"] for line in lines if "error" in line}
    assert sorted(errors) == failed_keys
    assert all(e["code"] == 13 and "was not resubmitted" in e["message"] for e in errors.values())
    results = stages.state.resources["eval"].results
    assert results is not None and (results.succeeded, results.failed) == (4, 4)
    warnings = [e.message for e in stages.reporter.events if e.kind.value == "warning"]
    assert f"4 request(s) of shard {failed_shard} recorded as failed: its job ended FAILED" in (
        warnings
    )
