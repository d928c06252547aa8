"""Collecting results records, per job, the tokens their `usageMetadata` reports and what they
cost at batch prices: file and inline jobs, shards, cached prompts, thinking, embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from reconciler.apply.collect import collect
from reconciler.apply.context import ApplyContext
from reconciler.apply.create import create
from reconciler.plan.actions import ActionKind
from reconciler.state.document import JobAttempt, TokenUsage
from reconciler.state.request_keys import load_request_keys
from tests.integration.apply.harness import Stages, only, plan_now, result_lines, wait_settled

KEYS = [f"q{i}" for i in range(6)]


async def _create_and_collect(context: ApplyContext) -> None:
    live, plan = await plan_now(context, include_files=True)
    await create(context, only(plan, ActionKind.CREATE, "eval"), live)
    await wait_settled(context)
    live, plan = await plan_now(context)
    await collect(context, only(plan, ActionKind.COLLECT, "eval"), live)


def _summed(responses: Iterable[dict[str, Any]], model: str) -> TokenUsage:
    """What the brief defines: every response's `usageMetadata`, added up by hand."""
    total = dict.fromkeys(("prompt", "output", "thinking", "cached", "tool_use_prompt"), 0)
    count = 0
    for response in responses:
        usage = response["usageMetadata"]
        total["prompt"] += usage["promptTokenCount"]
        total["output"] += usage.get("candidatesTokenCount", 0)
        total["thinking"] += usage.get("thoughtsTokenCount", 0)
        total["cached"] += usage.get("cachedContentTokenCount", 0)
        total["tool_use_prompt"] += usage.get("toolUsePromptTokenCount", 0)
        count += 1
    return TokenUsage(**total, responses=count, model=model)


def _attempts(stages: Stages) -> list[JobAttempt]:
    return list(stages.state.resources["eval"].attempts)


def test_collecting_a_file_job_records_its_token_usage_and_batch_cost(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", KEYS)
    stages.manifest(
        "eval",
        "  model: gemini-2.5-flash\n  source:\n    file: data/eval.jsonl\n"
        "  output: results/eval.jsonl\n",
    )

    stages.run(_create_and_collect)

    lines = result_lines(stages.root / "results/eval.jsonl")
    expected = _summed((line["response"] for line in lines), "gemini-2.5-flash")
    (attempt,) = _attempts(stages)
    assert attempt.usage == expected
    assert expected.thinking > 0, "gemini-2.5-flash thinks by default in the emulator"
    # gemini-2.5-flash: $0.30 in, $2.50 out (thinking included) per million, half in batch.
    cost = (expected.prompt * 0.30 + (expected.output + expected.thinking) * 2.50) / 1e6 * 0.5
    assert attempt.cost_usd == pytest.approx(cost)
    assert attempt.collected_at == stages.clock.now()


def test_each_shard_records_the_usage_of_its_own_results(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", KEYS)
    stages.manifest(
        "eval",
        "  model: gemini-2.5-flash-lite\n  source:\n    file: data/eval.jsonl\n"
        "  output: results/eval.jsonl\n  shards:\n    max_requests: 4\n",
    )

    stages.run(_create_and_collect)

    lines = {line["key"]: line for line in result_lines(stages.root / "results/eval.jsonl")}
    shards = _attempts(stages)
    assert len(shards) == 2
    for shard in shards:
        assert shard.request_keys_file is not None
        keys = load_request_keys(stages.backend, shard.request_keys_file) or []
        assert shard.usage == _summed(
            (lines[key]["response"] for key in keys), "gemini-2.5-flash-lite"
        )
        assert shard.usage.thinking == 0, "flash-lite does not think"


def test_cached_prompt_tokens_are_billed_at_the_cached_rate(stages: Stages) -> None:
    request = {"contents": [{"parts": [{"text": "hello"}]}], "cachedContent": "cachedContents/x"}
    stages.manifest(
        "eval",
        "  model: gemini-2.5-flash-lite\n  source:\n    requests:\n"
        f"      - {json.dumps({'key': 'a', 'request': request})}\n"
        "  output: results/eval.jsonl\n",
    )

    stages.run(_create_and_collect)

    (attempt,) = _attempts(stages)
    assert attempt.usage is not None and attempt.usage.cached == 1024
    usage = attempt.usage
    # gemini-2.5-flash-lite: $0.10 in, $0.01 cached, $0.40 out per million; half in batch.
    cost = ((usage.prompt - 1024) * 0.10 + 1024 * 0.01 + usage.output * 0.40) / 1e6 * 0.5
    assert attempt.cost_usd == pytest.approx(cost)


def test_an_embedding_jobs_usage_is_its_token_count_priced_as_input(stages: Stages) -> None:
    stages.manifest(
        "eval",
        "  model: gemini-embedding-001\n  task: embed\n  source:\n    requests:\n"
        '      - {content: {parts: [{text: "one two three four"}]}}\n'
        '      - {content: {parts: [{text: "five six seven eight nine ten"}]}}\n'
        "  output: results/eval.jsonl\n",
    )

    stages.run(_create_and_collect)

    (attempt,) = _attempts(stages)
    lines = result_lines(stages.root / "results/eval.jsonl")
    tokens = sum(int(line["response"]["tokenCount"]) for line in lines)
    assert attempt.usage == TokenUsage(prompt=tokens, responses=2, model="gemini-embedding-001")
    assert attempt.cost_usd == pytest.approx(tokens * 0.15 / 1e6 * 0.5)


def test_image_generation_bills_the_generated_image_as_output_tokens(stages: Stages) -> None:
    stages.jsonl("data/eval.jsonl", KEYS[:2])
    stages.manifest(
        "eval",
        "  model: gemini-2.5-flash-image\n  source:\n    file: data/eval.jsonl\n"
        "  output: results/images/\n",
    )

    stages.run(_create_and_collect)

    (attempt,) = _attempts(stages)
    assert attempt.usage is not None and attempt.usage.responses == 2
    assert attempt.usage.output >= 2 * 1290, "each image is billed as 1,290 output tokens"
    # gemini-2.5-flash-image: $0.30 in, $30 out per million; half in batch.
    cost = (attempt.usage.prompt * 0.30 + attempt.usage.output * 30.0) / 1e6 * 0.5
    assert attempt.cost_usd == pytest.approx(cost)
