"""One `apply --wait` converges: under injected faults, and past the concurrent-job cap.

The CLI in a subprocess against the emulator; faults and the cap are the emulator's switches.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections import Counter

from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, text_request

FAULTS = {
    "rate_429": 0.07,
    "rate_500": 0.07,
    "rate_503": 0.06,
    "drop_rate": 0.05,
    "latency_seconds": 0.2,
    "seed": 15,
}
"""20 % of calls answer 429/500/503, 5 % lose their connection, every call waits 200 ms."""


def _manifests(project: Project, count: int, config: str = "") -> list[str]:
    names = [f"r{i:02d}" for i in range(count)]
    for name in names:
        request = json.dumps({"key": "a", "request": text_request(f"about {name}")})
        project.manifest(
            name,
            "  model: gemini-2.5-flash\n  source:\n    requests:\n"
            f"      - {request}\n  output: results/{name}.jsonl\n{config}",
        )
    return names


def _jobs_per_resource(emulator: EmulatorHandle) -> Counter[str]:
    """How many jobs the service holds for each resource (read with faults off)."""
    counts: Counter[str] = Counter()
    token = ""
    while True:
        query = urllib.parse.urlencode({"pageSize": 100, "pageToken": token})
        request = urllib.request.Request(
            f"{emulator.base_url}/v1beta/batches?{query}", headers={"x-goog-api-key": "test"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        for op in body.get("operations", []):
            tag = parse_tag(op["metadata"].get("displayName", ""))
            if tag is not None:
                counts[tag.resource] += 1
        token = body.get("nextPageToken", "")
        if not token:
            return counts


def _converges_under_faults(project: Project, emulator: EmulatorHandle, count: int) -> None:
    names = _manifests(project, count)
    emulator.configure(**FAULTS)
    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "240", timeout=300)
    emulator.configure(rate_429=0.0, rate_500=0.0, rate_503=0.0, drop_rate=0.0)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _jobs_per_resource(emulator) == Counter(dict.fromkeys(names, 1)), "no duplicates"
    state = project.state()
    assert all(state["resources"][n]["results"] is not None for n in names)
    assert all((project.root / f"results/{n}.jsonl").exists() for n in names)


def test_one_apply_over_50_resources_converges_under_faults(
    project: Project, emulator: EmulatorHandle
) -> None:
    """About 35 s on a 2-core machine: in the default run (the brief's bound for `slow` is 60 s)."""
    _converges_under_faults(project, emulator, 50)


def test_one_apply_finishes_every_resource_in_waves_past_the_job_cap(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write(
        "reconciler.yaml",
        "manifests: manifests\nstate: state/reconciler.state.json\n"
        "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n"
        "guardrails:\n  max_concurrent_jobs: 5\n",
    )
    names = _manifests(project, 30)
    emulator.configure(max_concurrent_jobs=5, job_seconds=0.5)

    planned = project.run("plan")
    assert "5 job(s) start now, 25 more in 5 waves as capacity frees" in planned.stdout

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "120", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(project.state()["resources"][n]["results"] is not None for n in names)
    assert _jobs_per_resource(emulator) == Counter(dict.fromkeys(names, 1))
    assert emulator.calls()["batches.create_generate"] == 30, "no create was refused"


def test_apply_no_wait_creates_what_fits_and_says_what_waits(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write(
        "reconciler.yaml",
        "manifests: manifests\nstate: state/reconciler.state.json\n"
        "guardrails:\n  max_concurrent_jobs: 2\n",
    )
    names = _manifests(project, 4)
    emulator.configure(max_concurrent_jobs=2, job_seconds=30)

    result = project.run("apply", "--auto-approve", "--no-wait")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 resource(s) wait for capacity" in result.stderr
    assert sum(_jobs_per_resource(emulator).values()) == 2
    assert sorted(_jobs_per_resource(emulator)) == names[:2]
