"""`reconciler apply` end to end: the CLI in a subprocess, a git project, the emulator over HTTP."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import pytest

from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _texts(n: int, prefix: str = "q") -> str:
    return jsonl(
        [
            {"key": f"{prefix}{i}", "request": text_request(f"question {prefix}{i}")}
            for i in range(n)
        ]
    )


def _results(project: Project, relative: str) -> list[dict]:
    return [json.loads(line) for line in (project.root / relative).read_text().splitlines() if line]


def _jobs_by_resource(emulator: EmulatorHandle, project: Project) -> Counter[str]:
    """How many jobs the service holds per resource (from the identity tags)."""

    client = service_client(emulator)
    counts: Counter[str] = Counter()
    for job in client.batches.list(config={"page_size": 50}):
        tag = parse_tag(job.display_name)
        if tag is not None:
            counts[tag.resource] += 1
    return counts


def _seed_project(project: Project) -> None:
    project.write("data/eval.jsonl", _texts(3))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.manifest(
        "inline",
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'Write a short poem about a cloud.'}]}]\n"
        "      - contents: [{parts: [{text: 'Write a short poem about a cat.'}]}]\n"
        "  output: results/inline.jsonl\n",
    )
    project.write(
        "data/embed.jsonl",
        jsonl(
            [
                {
                    "key": f"doc{i}",
                    "request": {
                        "content": {"parts": [{"text": f"doc {i}"}]},
                        "output_dimensionality": 8,
                    },
                }
                for i in range(2)
            ]
        ),
    )
    project.manifest(
        "embed",
        "  model: gemini-embedding-001\n  task: embed\n  source:\n    file: data/embed.jsonl\n"
        "  output: results/embed.jsonl\n",
    )
    project.write(
        "data/images.jsonl",
        jsonl([{"key": "img1", "request": text_request("A mountain at sunrise")}]),
    )
    project.manifest(
        "images",
        file_job_spec("data/images.jsonl", "results/images/", model="gemini-2.5-flash-image"),
    )
    project.commit("seed")


def test_apply_creates_every_job_waits_and_writes_every_result(
    project: Project, emulator: EmulatorHandle
) -> None:
    _seed_project(project)

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    eval_results = _results(project, "results/eval.jsonl")
    assert [line["key"] for line in eval_results] == ["q0", "q1", "q2"]
    assert all(
        line["response"]["candidates"][0]["content"]["parts"][0]["text"] for line in eval_results
    )
    inline = _results(project, "results/inline.jsonl")
    assert [line["key"] for line in inline] == ["request-1", "request-2"]
    embeddings = _results(project, "results/embed.jsonl")
    assert [len(line["response"]["embedding"]["values"]) for line in embeddings] == [8, 8]
    images = _results(project, "results/images/results.jsonl")
    part = images[0]["response"]["candidates"][0]["content"]["parts"]
    image_file = next(p["file"]["path"] for p in part if "file" in p)
    assert (project.root / "results/images" / image_file).read_bytes().startswith(PNG_SIGNATURE)
    state = project.state()
    assert set(state["resources"]) == {"eval", "inline", "embed", "images"}
    assert state["resources"]["eval"]["results"]["succeeded"] == 3

    again = project.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _jobs_by_resource(emulator, project) == Counter(
        {"eval": 1, "inline": 1, "embed": 1, "images": 1}
    )


def test_first_plan_shows_creates_and_exits_2_with_detailed_exitcode(project: Project) -> None:
    _seed_project(project)

    planned = project.run("plan", "--detailed-exitcode")

    assert planned.returncode == 2, planned.stderr
    assert "eval" in planned.stdout and "create" in planned.stdout


def test_editing_an_input_replaces_only_that_job(
    project: Project, emulator: EmulatorHandle
) -> None:
    _seed_project(project)
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0

    project.write("data/eval.jsonl", _texts(3).replace("question q1", "question q1 (reworded)"))
    project.commit("reword q1")
    planned = project.run("plan", "--format", "json")
    actions = {a["resource"]: a["kind"] for a in json.loads(planned.stdout)["actions"]}
    assert actions["eval"] in ("replace",)
    assert {k for k, v in actions.items() if v != "noop"} == {"eval"}
    assert "q1" in planned.stdout

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    assert project.run("plan", "--detailed-exitcode").returncode == 0


def test_removing_a_running_jobs_manifest_cancels_it(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(job_seconds=60)
    project.write("data/eval.jsonl", _texts(2))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    job_name = project.state()["resources"]["eval"]["attempts"][0]["job_name"]

    (project.root / "manifests/eval.yaml").unlink()
    project.commit("remove eval")
    applied = project.run("apply", "--auto-approve", "--no-wait")

    assert applied.returncode == 0, applied.stderr
    assert f"cancelled {job_name}" in applied.stderr
    assert "eval" not in project.state()["resources"]

    client = service_client(emulator)
    assert client.batches.get(name=job_name).state.name == "JOB_STATE_CANCELLED"


def test_no_wait_submits_and_a_later_apply_collects(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write("data/eval.jsonl", _texts(2))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()

    submitted = project.run("apply", "--auto-approve", "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    assert not (project.root / "results/eval.jsonl").exists()

    collected = project.run("apply", "--auto-approve", "--wait")
    assert collected.returncode == 0, collected.stderr
    assert len(_results(project, "results/eval.jsonl")) == 2
    assert _jobs_by_resource(emulator, project) == Counter({"eval": 1})


def test_apply_runs_on_the_listing_its_plan_was_made_against(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write("data/eval.jsonl", _texts(2))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()
    emulator.reset_calls()

    submitted = project.run("apply", "--auto-approve", "--no-wait")

    assert submitted.returncode == 0, submitted.stderr
    calls = emulator.calls()
    # One listing of jobs and files, taken under the lock for the plan, serves the run too.
    assert (calls["batches.list"], calls["files.list"], calls["models.get"]) == (1, 1, 1)
    assert _jobs_by_resource(emulator, project) == Counter({"eval": 1})


def test_a_failed_job_is_resubmitted_per_policy(project: Project, emulator: EmulatorHandle) -> None:
    emulator.configure(fail_next_jobs=1)
    project.write("data/eval.jsonl", _texts(2))
    project.manifest(
        "eval",
        file_job_spec(
            "data/eval.jsonl",
            "results/eval.jsonl",
            extra="  policy:\n    resubmit: [FAILED]\n    max_attempts: 2\n",
        ),
    )
    project.commit()

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    attempts = project.state()["resources"]["eval"]["attempts"]
    assert [a["state"] for a in attempts] == ["FAILED", "SUCCEEDED"]
    assert len(_results(project, "results/eval.jsonl")) == 2


def _wait_until_settled(emulator: EmulatorHandle, job_name: str) -> None:
    """Poll the job through the SDK until it ends (reading it also makes the emulator write its
    results, with the faults in force at that moment)."""
    import time

    client = service_client(emulator)
    for _ in range(200):
        if client.batches.get(name=job_name).state.name in (
            "JOB_STATE_SUCCEEDED",
            "JOB_STATE_FAILED",
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"{job_name} did not settle")


def test_failed_requests_are_retried_alone_and_merged_by_key(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(request_error_rate=0.5)
    project.write("data/eval.jsonl", _texts(8))
    project.manifest(
        "eval",
        file_job_spec(
            "data/eval.jsonl",
            "results/eval.jsonl",
            extra="  policy:\n    retry_failed_requests: 1\n",
        ),
    )
    project.commit()
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    _wait_until_settled(emulator, project.state()["resources"]["eval"]["attempts"][0]["job_name"])
    emulator.configure(request_error_rate=0.0)

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    state = project.state()["resources"]["eval"]
    retry = state["attempts"][-1]
    assert retry["purpose"] == "retry_failed"
    results = _results(project, "results/eval.jsonl")
    assert [line["key"] for line in results] == [f"q{i}" for i in range(8)]
    assert all("response" in line for line in results)
    assert state["results"]["failed"] == 0 and state["results"]["succeeded"] == 8
    assert _jobs_by_resource(emulator, project) == Counter({"eval": 2})


@pytest.mark.slow  # ~40 s: late results and 429s are waited out in real time
def test_quirky_emulator_late_results_and_429_on_create_still_converges(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(results_delay_seconds=1.5, rate_429=0.3, seed=7)
    _seed_project(project)

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    emulator.configure(rate_429=0.0)
    assert project.run("plan", "--detailed-exitcode").returncode == 0
    assert _jobs_by_resource(emulator, project) == Counter(
        {"eval": 1, "inline": 1, "embed": 1, "images": 1}
    )


def test_apply_without_auto_approve_and_no_terminal_refuses(project: Project) -> None:
    _seed_project(project)

    refused = project.run("apply")

    assert refused.returncode == 1
    assert "--auto-approve" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_saved_plan_applies_once_and_is_refused_when_stale(
    project: Project, tmp_path: Path
) -> None:
    _seed_project(project)
    plan_file = tmp_path / "plan.bin"
    assert project.run("plan", "--out", str(plan_file)).returncode == 0

    applied = project.run("apply", str(plan_file), "--no-wait")
    assert applied.returncode == 0, applied.stderr

    stale = project.run("apply", str(plan_file), "--no-wait")
    assert stale.returncode == 1
    assert "stale" in stale.stderr.lower() or "serial" in stale.stderr.lower()


def test_results_keep_image_bytes_decodable(project: Project) -> None:
    project.write("data/images.jsonl", jsonl([{"key": "img1", "request": text_request("A lake")}]))
    project.manifest(
        "images",
        file_job_spec("data/images.jsonl", "results/images.jsonl", model="gemini-2.5-flash-image"),
    )
    project.commit()

    assert project.run("apply", "--auto-approve", "--wait").returncode == 0

    line = _results(project, "results/images.jsonl")[0]
    parts = line["response"]["candidates"][0]["content"]["parts"]
    data = next(p["inlineData"]["data"] for p in parts if "inlineData" in p)
    assert base64.b64decode(data).startswith(PNG_SIGNATURE)


def test_a_failed_job_that_policy_does_not_resubmit_fails_the_apply(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(fail_next_jobs=1)
    project.write("data/eval.jsonl", _texts(2))
    project.manifest(
        "eval",
        file_job_spec(
            "data/eval.jsonl", "results/eval.jsonl", extra="  policy:\n    resubmit: []\n"
        ),
    )
    project.commit()

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 1
    assert "eval" in applied.stderr and "FAILED" in applied.stderr
    assert "policy.resubmit" in applied.stderr
    assert project.state()["resources"]["eval"]["attempts"][0]["state"] == "FAILED"
