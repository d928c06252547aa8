"""Apply under the concurrent-job limit, against the emulator's cap: creates past capacity wait
and start in waves as jobs end; none fails."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.apply.context import ApplyContext, ApplyOptions, ApplyReport
from reconciler.apply.events import EventKind
from reconciler.apply.executor import apply_plan
from reconciler.config import Guardrails
from tests.integration.apply.harness import Stages, plan_now

NAMES = [f"job-{i}" for i in range(6)]


def _inline(text: str, priority: int | None = None) -> str:
    config = f"  config: {{priority: {priority}}}\n" if priority is not None else ""
    return (
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        f"      - {{key: a, request: {{contents: [{{parts: [{{text: '{text}'}}]}}]}}}}\n"
        f"  output: results/{text}.jsonl\n{config}"
    )


def _project(stages: Stages, *, declared: int, cap: int, wait: bool) -> None:
    for name in NAMES:
        stages.manifest(name, _inline(name, priority=5 if name == "job-5" else None))
    config = stages.project.config.model_copy(
        update={"guardrails": Guardrails(max_concurrent_jobs=declared)}
    )
    stages.project = replace(stages.project, config=config)
    stages.options = ApplyOptions(wait=wait)
    stages.emulator.configure(max_concurrent_jobs=cap, job_seconds=0.3)


async def _apply(context: ApplyContext) -> ApplyReport:
    _, plan = await plan_now(context)
    return await apply_plan(context, plan)


@pytest.mark.parametrize("declared", [2, 100], ids=["declared-limit", "service-limit-only"])
def test_apply_waits_for_capacity_and_finishes_every_resource_in_waves(
    stages: Stages, declared: int
) -> None:
    _project(stages, declared=declared, cap=2, wait=True)

    report = stages.run(_apply)

    assert report.failures == {} and report.waiting == [] and report.unsettled == []
    state = stages.state
    assert all(state.resources[n].results is not None for n in NAMES)
    assert all(len(state.resources[n].attempts) == 1 for n in NAMES), "no duplicate jobs"
    waits = stages.reporter.messages(EventKind.PROGRESS)
    assert any("wait for capacity" in m for m in waits)
    refused = stages.emulator.calls().get("batches.create_generate", 0) - len(NAMES)
    if declared == 2:
        assert refused == 0, "with the limit declared, no create is refused"


def test_higher_priority_starts_in_the_first_wave(stages: Stages) -> None:
    _project(stages, declared=2, cap=2, wait=False)

    report = stages.run(_apply)

    started = sorted(n for n, r in stages.state.resources.items() if r.attempts)
    assert started == ["job-0", "job-5"], "priority 5 first, then manifest order"
    assert report.failures == {}
    assert report.waiting == ["job-1", "job-2", "job-3", "job-4"]
