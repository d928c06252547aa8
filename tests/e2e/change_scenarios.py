"""The kinds of change the kill tests kill apply in, shared by every endpoint's kill suite.

A resource already converged is changed (its input edited, replaced or re-run incrementally,
sharded or not); `assert_converged` then says what "landed" means on any endpoint: outputs that
hold exactly the current input's keys, each answered for its current request, and exactly one
job per attempt, shard and re-run at the service, agreeing with the state.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request

POINTS = [
    "input-uploaded",
    "intent-recorded",
    "job-created",
    "job-recorded",
    "results-downloaded",
    "results-written",
]
"""Every crash point of a create and its collection (`apply/context.py::crash_point`)."""

JobCounts = Counter[tuple[str, int, int | None, int]]
"""Jobs at the service by (resource, attempt, shard, rerun), read from their identity tags."""


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


def write_input(project: Project, requests: dict[str, str], extra: str) -> None:
    lines = [{"key": key, "request": text_request(text)} for key, text in requests.items()]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl") + extra)
    project.commit()


def start(project: Project, change: Change) -> None:
    """Converge on the change's starting point (if any), then write the change, unapplied."""
    if change.before is not None:
        write_input(project, change.before, change.extra)
        first = project.run("apply", "--auto-approve", "--wait")
        assert first.returncode == 0, first.stderr
    write_input(project, change.after, change.extra)


def assert_converged(project: Project, change: Change, jobs: JobCounts) -> None:
    """Nothing left to do, the results answer exactly the current input, and `jobs` (the
    service's, by identity tag) hold one job per attempt the state records."""
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    lines = [
        json.loads(line) for line in (project.root / "results/eval.jsonl").read_text().splitlines()
    ]
    assert [line["key"] for line in lines] == list(change.after), "exactly the current keys"
    for line in lines:
        text = line["response"]["candidates"][0]["content"]["parts"][0]["text"]
        assert change.after[line["key"]] in text, f"{line['key']} answers an old request"
    assert all(count == 1 for count in jobs.values()), f"duplicate jobs: {jobs}"
    assert {attempt for (_, attempt, _, _) in jobs} == set(range(1, change.attempts + 1))
    record = project.state()["resources"]["eval"]
    recorded = Counter((a["number"], a["shard"], a["rerun"]) for a in record["attempts"])
    assert recorded == Counter({key[1:]: 1 for key in jobs}), "state and service agree"
