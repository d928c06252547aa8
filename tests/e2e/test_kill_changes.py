"""Kill tests for changes: every kind of change, killed at every step, lands on the next apply.

A resource already converged is changed (its input edited, replaced or re-run incrementally,
sharded or not); the `apply` that carries the change is SIGKILLed right after one step that
changes the world, or fails outright (an upload the service refuses). Whatever happened, the
change stays visible to `plan` until it is realised, and one more `apply` converges to outputs
that hold exactly the current input's keys, each answered for its current request, with exactly
one job per attempt and shard at the service.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from dataclasses import dataclass

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request

POINTS = [
    "input-uploaded",
    "intent-recorded",
    "job-created",
    "job-recorded",
    "results-downloaded",
    "results-written",
]


def prompts(count: int, version: str = "v1") -> dict[str, str]:
    return {f"k{i:02d}": f"{version} question {i}" for i in range(count)}


@dataclass(frozen=True)
class Change:
    """A converged starting point (None: the resource is new) and the input that changes it."""

    before: dict[str, str] | None
    after: dict[str, str]
    extra: str = ""
    """Manifest lines under `spec:` (policy, shards)."""
    attempts: int = 2
    """Attempts the resource has once the change is realised."""


def _edited(base: dict[str, str]) -> dict[str, str]:
    """One request changed, one added, the rest unchanged."""
    return {**base, "k01": "edited question 1", "k99": "an added question"}


SHARDED = "  shards:\n    max_requests: 4\n"
RERUN_ALL = "  policy:\n    rerun: all\n"
CHANGES: dict[str, Change] = {
    "replace": Change(prompts(3), _edited(prompts(3)), RERUN_ALL),
    "incremental": Change(prompts(3), _edited(prompts(3))),
    "sharded-create": Change(None, prompts(12), SHARDED, attempts=1),
    "sharded-rerun": Change(prompts(12), prompts(12, "v2"), SHARDED + RERUN_ALL),
    "sharded-incremental": Change(prompts(12), _edited(prompts(12)), SHARDED),
}


def _write(project: Project, requests: dict[str, str], extra: str) -> None:
    lines = [{"key": key, "request": text_request(text)} for key, text in requests.items()]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl") + extra)
    project.commit()


def _start(project: Project, change: Change) -> None:
    if change.before is not None:
        _write(project, change.before, change.extra)
        first = project.run("apply", "--auto-approve", "--wait")
        assert first.returncode == 0, first.stderr
    _write(project, change.after, change.extra)


def _jobs(emulator: EmulatorHandle) -> Counter[tuple[str, int, int | None, int]]:
    """Jobs at the service by (resource, attempt, shard, rerun), from their identity tags."""

    client = service_client(emulator)
    found: Counter[tuple[str, int, int | None, int]] = Counter()
    for job in client.batches.list(config={"page_size": 100}):
        tag = parse_tag(job.display_name)
        if tag is not None:
            found[(tag.resource, tag.attempt, tag.shard, tag.rerun)] += 1
    return found


def assert_converged(project: Project, emulator: EmulatorHandle, change: Change) -> None:
    assert project.run("plan", "--detailed-exitcode").returncode == 0
    lines = [
        json.loads(line) for line in (project.root / "results/eval.jsonl").read_text().splitlines()
    ]
    assert [line["key"] for line in lines] == list(change.after), "exactly the current keys"
    for line in lines:
        text = line["response"]["candidates"][0]["content"]["parts"][0]["text"]
        assert change.after[line["key"]] in text, f"{line['key']} answers an old request"
    jobs = _jobs(emulator)
    assert all(count == 1 for count in jobs.values()), f"duplicate jobs: {jobs}"
    assert {attempt for (_, attempt, _, _) in jobs} == set(range(1, change.attempts + 1))
    record = project.state()["resources"]["eval"]
    recorded = Counter((a["number"], a["shard"], a["rerun"]) for a in record["attempts"])
    assert recorded == Counter({key[1:]: 1 for key in jobs}), "state and service agree"


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_killed_at_any_step_lands_on_the_next_apply(
    project: Project, emulator: EmulatorHandle, kind: str, point: str
) -> None:
    change = CHANGES[kind]
    _start(project, change)

    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point in ("input-uploaded", "intent-recorded"):
        # Nothing was created yet: the change must still be visible, not recorded as done.
        assert project.run("plan", "--detailed-exitcode").returncode == 2

    again = project.run("apply", "--auto-approve", "--wait")

    assert again.returncode == 0, again.stderr
    assert_converged(project, emulator, change)


@pytest.mark.parametrize("kind", [k for k, c in CHANGES.items() if c.before is not None])
def test_a_change_whose_upload_is_refused_stays_visible_until_it_lands(
    project: Project, emulator: EmulatorHandle, kind: str
) -> None:
    change = CHANGES[kind]
    _start(project, change)
    emulator.configure(max_file_bytes=64)  # every input file is larger: the upload is refused

    refused = project.run("apply", "--auto-approve", "--wait")

    assert refused.returncode == 1
    assert "eval" in refused.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 2, "the change was dropped"
    assert project.run("apply", "--auto-approve", "--wait").returncode == 1, "still refused"
    emulator.configure(max_file_bytes=2 * 1024**3)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert_converged(project, emulator, change)


@pytest.mark.slow  # ~25 s per kind: the refused creates are retried with the service's backoff
@pytest.mark.parametrize("kind", [k for k, c in CHANGES.items() if c.before is not None])
def test_a_change_whose_create_is_refused_stays_visible_until_it_lands(
    project: Project, emulator: EmulatorHandle, kind: str
) -> None:
    change = CHANGES[kind]
    _start(project, change)
    emulator.configure(max_concurrent_jobs=0)  # every create answers 429 RESOURCE_EXHAUSTED

    refused = project.run("apply", "--auto-approve", "--no-wait")

    assert "Traceback" not in refused.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 2, "the change was dropped"
    emulator.configure(max_concurrent_jobs=100)
    again = project.run("apply", "--auto-approve", "--wait")
    assert again.returncode == 0, again.stderr
    assert_converged(project, emulator, change)
