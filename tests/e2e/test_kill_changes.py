"""Kill tests for changes: every kind of change, killed at every step, lands on the next apply.

A resource already converged is changed (its input edited, replaced or re-run incrementally,
sharded or not; the table is in change_scenarios.py); the `apply` that carries the change is SIGKILLed right after one step that
changes the world, or fails outright (an upload the service refuses). Whatever happened, the
change stays visible to `plan` until it is realised, and one more `apply` converges to outputs
that hold exactly the current input's keys, each answered for its current request, with exactly
one job per attempt and shard at the service.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.change_scenarios import (
    CHANGES,
    POINTS,
    JobCounts,
    assert_converged,
    start,
)
from tests.e2e.conftest import Project, service_client


def _jobs(emulator: EmulatorHandle) -> JobCounts:
    """Jobs at the service by (resource, attempt, shard, rerun), from their identity tags."""

    client = service_client(emulator)
    found: JobCounts = Counter()
    for job in client.batches.list(config={"page_size": 100}):
        tag = parse_tag(job.display_name)
        if tag is not None:
            found[(tag.resource, tag.attempt, tag.shard, tag.rerun)] += 1
    return found


def _kill_cases() -> list[object]:
    """Every change kind x every crash point. The default run takes a diagonal of the table
    (each point once, each kind at least once, the kinds rotating over the points); the rest
    run in the slow suite (`pytest -m slow`), which CI runs when time allows."""
    kinds = list(CHANGES)
    cases: list[object] = []
    for i, point in enumerate(POINTS):
        for j, kind in enumerate(kinds):
            diagonal = j == i % len(kinds)
            marks = [] if diagonal else [pytest.mark.slow]
            cases.append(pytest.param(kind, point, marks=marks, id=f"{kind}-{point}"))
    return cases


REFUSED_UPLOAD_DEFAULT = "sharded-incremental"
"""The refused-upload case the default run keeps: sharded and incremental, the most steps."""


@pytest.mark.parametrize(("kind", "point"), _kill_cases())
def test_a_change_killed_at_any_step_lands_on_the_next_apply(
    project: Project, emulator: EmulatorHandle, kind: str, point: str
) -> None:
    change = CHANGES[kind]
    start(project, change)

    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point in ("input-uploaded", "intent-recorded"):
        # Nothing was created yet: the change must still be visible, not recorded as done.
        assert project.run("plan", "--detailed-exitcode").returncode == 2

    again = project.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    assert_converged(project, change, _jobs(emulator))


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, marks=[] if k == REFUSED_UPLOAD_DEFAULT else [pytest.mark.slow])
        for k, c in CHANGES.items()
        if c.before is not None
    ],
)
def test_a_change_whose_upload_is_refused_stays_visible_until_it_lands(
    project: Project, emulator: EmulatorHandle, kind: str
) -> None:
    change = CHANGES[kind]
    start(project, change)
    emulator.configure(max_file_bytes=64)  # every input file is larger: the upload is refused

    refused = project.run("apply", "--auto-approve", "--wait")

    assert refused.returncode == 1
    assert "eval" in refused.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 2, "the change was dropped"
    assert project.run("apply", "--auto-approve", "--wait").returncode == 1, "still refused"
    emulator.configure(max_file_bytes=2 * 1024**3)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert_converged(project, change, _jobs(emulator))


@pytest.mark.slow  # ~25 s per kind: the refused creates are retried with the service's backoff
@pytest.mark.parametrize("kind", [k for k, c in CHANGES.items() if c.before is not None])
def test_a_change_whose_create_is_refused_stays_visible_until_it_lands(
    project: Project, emulator: EmulatorHandle, kind: str
) -> None:
    change = CHANGES[kind]
    start(project, change)
    emulator.configure(max_concurrent_jobs=0)  # every create answers 429 RESOURCE_EXHAUSTED

    refused = project.run("apply", "--auto-approve", "--no-wait")

    assert "Traceback" not in refused.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 2, "the change was dropped"
    emulator.configure(max_concurrent_jobs=100)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert_converged(project, change, _jobs(emulator))


@pytest.mark.parametrize("kind", ["sharded-create", "sharded-rerun"])
def test_a_sharded_change_killed_between_its_shards_creates_lands_in_one_more_apply(
    project: Project, emulator: EmulatorHandle, kind: str
) -> None:
    # Only one shard's create can reach the service before the kill (the others are refused
    # for capacity), so the next apply finds one intent's job and the rest lost: it must adopt
    # the one and create the rest in the same run, not adopt and stop.
    change = CHANGES[kind]
    start(project, change)
    emulator.configure(max_concurrent_jobs=1)

    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: "job-created"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    attempt = change.attempts
    assert sum(n for (_, a, _, _), n in _jobs(emulator).items() if a == attempt) == 1
    emulator.configure(max_concurrent_jobs=100)

    again = project.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    assert_converged(project, change, _jobs(emulator))
