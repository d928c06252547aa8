"""The scale, start-up and asyncio-floor benchmarks run end to end at smoke size.

They are not timed here: each must finish, measure every side and step, and report what it
promises (benchmarks/README.md), so `python -m benchmarks` does not rot between full runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import asyncio_floor, scale, startup


def test_startup_times_help_and_validate_against_a_bare_interpreter(tmp_path: Path) -> None:
    timings = startup.measure(1, tmp_path)
    assert set(timings) == {"python -c pass", "reconciler --help", "reconciler validate"}
    lines = startup.report(timings)
    assert sum("x the bare interpreter" in line for line in lines) == 2


@pytest.mark.slow
def test_scale_runs_every_step_and_reports_calls_writes_and_growth(tmp_path: Path) -> None:
    runs = scale.run([2, 3], tmp_path, parallelism=4, latency=0.0, job_seconds=0.1)
    steps = {step.name: step for step in runs[3]}
    assert list(steps) == [name for name, _ in scale.STEPS]
    assert steps["plan"].exit_code == 2  # changes: every resource to create
    assert steps["no-op plan"].exit_code == 0
    assert steps["apply --no-wait"].calls.get("batches.create_generate") == 3
    assert steps["apply --no-wait"].state_writes
    assert steps["apply --wait"].state_bytes > 0
    assert len(list((tmp_path / "scale-3" / "results").glob("*.jsonl"))) == 3
    assert any("growth N=2->3" in line for line in scale.report(runs))


@pytest.mark.slow
def test_the_asyncio_floor_and_apply_collect_every_job(tmp_path: Path) -> None:
    runs = asyncio_floor.measure(
        tmp_path, jobs=2, parallelism=2, poll=0.2, repeat=1, latency=0.0, job_seconds=0.2
    )
    assert {side: [run.collected for run in side_runs] for side, side_runs in runs.items()} == {
        "floor": [2],
        "matched": [2],
        "same-work": [2],
        "defaults": [2],
    }
    # One line per side; a side whose calls differ from the floor's adds an indented line.
    sides = [line.split()[1] for line in asyncio_floor.report(runs, 2) if line.startswith("floor")]
    assert sides == list(asyncio_floor.SIDES)


def _step(name: str, resources: int, seconds: float) -> scale.Step:
    return scale.Step(name, resources, seconds, seconds, 1024, {"batches.list": 1}, 1, 100, 0)


def test_scale_growth_is_the_added_time_per_added_resource() -> None:
    runs = {
        100: [_step("validate", 100, 1.0), _step("plan", 100, 2.0)],
        1100: [_step("validate", 1100, 3.0), _step("plan", 1100, 12.0)],
    }
    growth = [line for line in scale.report(runs) if "growth" in line]
    assert growth == [
        "scale    growth N=100->1100, ms per added resource: validate 2.00; plan 10.00"
    ]
