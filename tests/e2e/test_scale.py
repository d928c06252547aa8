"""Sharding and incremental re-runs end to end: the CLI in a subprocess against the emulator."""

from __future__ import annotations

import json
import signal
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from reconciler.apply.context import CRASH_HOOK_ENV
from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request


def _lines(keys: list[str], variant: str = "") -> str:
    return jsonl([{"key": k, "request": text_request(f"question {k}{variant}")} for k in keys])


def _result_keys(project: Project, relative: str) -> list[str]:
    text = (project.root / relative).read_text()
    return [json.loads(line)["key"] for line in text.splitlines() if line]


def _jobs(emulator: EmulatorHandle, resource: str) -> list[tuple[str, int]]:
    """(display name, request count) of every job the service holds for `resource`, oldest first.

    Read over raw REST: the SDK's BatchJob does not expose `batchStats`.
    """
    url = f"{emulator.base_url}/v1beta/batches"
    found: list[tuple[str, str, int]] = []
    token = ""
    while True:
        query = urllib.parse.urlencode({"pageSize": 100, "pageToken": token})
        request = urllib.request.Request(f"{url}?{query}", headers={"x-goog-api-key": "test"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        for op in body.get("operations", []):
            meta = op["metadata"]
            name = meta.get("displayName", "")
            tag = parse_tag(name)
            if tag is not None and tag.resource == resource:
                count = int(meta.get("batchStats", {}).get("requestCount", "0"))
                found.append((meta["createTime"], name, count))
        token = body.get("nextPageToken", "")
        if not token:
            break
    return [(name, count) for _, name, count in sorted(found)]


def _apply(project: Project) -> None:
    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr + result.stdout


def _plan(project: Project) -> str:
    result = project.run("plan", "--detailed-exitcode")
    assert result.returncode in (0, 2), result.stderr
    return result.stdout if result.returncode == 2 else ""


def _sharded(project: Project, keys: list[str], extra: str = "") -> None:
    project.write("data/big.jsonl", _lines(keys))
    shards = "  shards:\n    max_requests: 3\n"
    project.manifest(
        "big", file_job_spec("data/big.jsonl", "results/big.jsonl", extra=shards + extra)
    )
    project.commit()


KEYS = [f"k{i:02d}" for i in (7, 3, 11, 0, 5, 9, 1, 4)]  # deliberately not sorted


def test_apply_splits_source_over_max_requests_and_merges_shards_in_input_order(
    project: Project, emulator: EmulatorHandle
) -> None:
    _sharded(project, KEYS)
    plan = project.run("plan")
    assert plan.returncode == 0, plan.stderr
    assert "runs 8 request(s) in 3 job(s) (shards of up to 3 requests)" in plan.stdout, plan.stdout

    _apply(project)

    assert sorted(count for _, count in _jobs(emulator, "big")) == [2, 3, 3]
    assert _result_keys(project, "results/big.jsonl") == KEYS
    record = project.state()["resources"]["big"]
    shards = sorted(a["shard"] for a in record["attempts"])
    assert shards == [0, 1, 2]
    assert {a["state"] for a in record["attempts"]} == {"SUCCEEDED"}
    assert record["results"]["succeeded"] == len(KEYS)
    assert _plan(project) == ""


def test_a_failed_shard_is_resubmitted_alone_and_every_key_is_collected(
    project: Project, emulator: EmulatorHandle
) -> None:
    _sharded(project, KEYS)
    emulator.configure(fail_next_jobs=1)

    _apply(project)

    record = project.state()["resources"]["big"]
    assert {a["number"] for a in record["attempts"]} == {1}
    failed = [a for a in record["attempts"] if a["state"] == "FAILED"]
    assert len(failed) == 1
    shard = failed[0]["shard"]
    rerun = [a for a in record["attempts"] if a["rerun"] == 1]
    assert [(a["shard"], a["state"]) for a in rerun] == [(shard, "SUCCEEDED")]
    assert rerun[0]["tag"].endswith(f":1.s{shard}r1]")
    # The service ran four jobs: three shards, then the failed one again with the same requests.
    jobs = _jobs(emulator, "big")
    assert len(jobs) == 4
    assert jobs[-1][0].endswith(f".s{shard}r1]")
    assert jobs[-1][1] == failed[0]["request_count"]
    assert _result_keys(project, "results/big.jsonl") == KEYS
    assert record["results"]["from_attempts"] == [1]
    assert _plan(project) == ""


@pytest.mark.parametrize(
    "point",
    [
        # The default run kills where a lost record would mean a second paid job; the other
        # points run in the slow suite (CI), and each of them in test_kill_changes.py's diagonal.
        pytest.param("intent-recorded", marks=pytest.mark.slow),
        "job-created",
        pytest.param("job-recorded", marks=pytest.mark.slow),
    ],
)
def test_apply_killed_while_rerunning_a_failed_shard_runs_it_exactly_once(
    project: Project, emulator: EmulatorHandle, point: str
) -> None:
    _sharded(project, KEYS)
    emulator.configure(fail_next_jobs=1)
    first = project.run("apply", "--auto-approve", "--no-wait")
    assert first.returncode == 0, first.stderr

    # The only job this run creates is the failed shard's second run: killed around it.
    killed = project.run("apply", "--auto-approve", "--wait", env={CRASH_HOOK_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr + killed.stdout
    _apply(project)

    jobs = _jobs(emulator, "big")
    assert len(jobs) == 4, jobs
    assert sum(1 for name, _ in jobs if name.endswith("r1]")) == 1
    assert _result_keys(project, "results/big.jsonl") == KEYS
    assert _plan(project) == ""


def test_failed_shard_whose_input_is_gone_is_rebuilt_from_its_request_keys(
    project: Project, emulator: EmulatorHandle
) -> None:
    _sharded(project, KEYS)
    emulator.configure(fail_next_jobs=1)
    first = project.run("apply", "--auto-approve", "--no-wait")
    assert first.returncode == 0, first.stderr
    record = project.state()["resources"]["big"]
    inputs = {a["input_file"] for a in record["attempts"]}
    # The service deletes uploads after 48 h; here every shard's input goes early.
    for name in inputs:
        request = urllib.request.Request(
            f"{emulator.base_url}/v1beta/{name}", method="DELETE", headers={"x-goog-api-key": "t"}
        )
        urllib.request.urlopen(request, timeout=10).close()

    _apply(project)

    record = project.state()["resources"]["big"]
    rerun = [a for a in record["attempts"] if a["rerun"] == 1]
    assert len(rerun) == 1
    assert rerun[0]["input_file"] not in inputs  # written again from its stored request keys
    jobs = _jobs(emulator, "big")
    assert len(jobs) == 4 and jobs[-1][1] == rerun[0]["request_count"]
    assert _result_keys(project, "results/big.jsonl") == KEYS


def test_a_shard_given_up_leaves_its_siblings_results_saved_and_its_requests_failed(
    project: Project, emulator: EmulatorHandle
) -> None:
    _sharded(project, KEYS, extra="  policy:\n    max_attempts: 1\n")
    emulator.configure(fail_next_jobs=1)

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "60")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "recorded as failed: its job ended FAILED" in result.stdout + result.stderr
    lines = [
        json.loads(line)
        for line in (project.root / "results/big.jsonl").read_text().splitlines()
        if line
    ]
    assert [line["key"] for line in lines] == KEYS  # every key, in input order
    failed = [line for line in lines if "error" in line]
    record = project.state()["resources"]["big"]
    shard = next(a for a in record["attempts"] if a["state"] == "FAILED")
    assert len(failed) == shard["request_count"]
    assert all("was not resubmitted" in line["error"]["message"] for line in failed)
    assert (record["results"]["succeeded"], record["results"]["failed"]) == (
        len(KEYS) - len(failed),
        len(failed),
    )
    assert len(_jobs(emulator, "big")) == 3
    assert _plan(project) == ""


def test_no_shard_exceeds_max_bytes_when_requests_vary_in_size(
    project: Project, emulator: EmulatorHandle
) -> None:
    lines = [
        {"key": k, "request": text_request(("long " * 80) if k in ("k07", "k03") else k)}
        for k in KEYS
    ]
    project.write("data/big.jsonl", jsonl(lines))
    shards = "  shards:\n    max_bytes: 700\n"
    project.manifest("big", file_job_spec("data/big.jsonl", "results/big.jsonl", extra=shards))
    project.commit()
    size = (project.root / "data/big.jsonl").stat().st_size
    planned = -(-size // 700)

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "60")

    assert result.returncode == 0, result.stderr + result.stdout
    jobs = _jobs(emulator, "big")
    assert len(jobs) > planned
    assert (
        f"split into {len(jobs)} jobs, not the {planned} planned" in result.stdout + result.stderr
    )
    assert _result_keys(project, "results/big.jsonl") == KEYS
    assert _plan(project) == ""


def test_inline_requests_are_sharded_and_merged_in_order(
    project: Project, emulator: EmulatorHandle
) -> None:
    items = "".join(f"      - contents: [{{parts: [{{text: 'q{i}'}}]}}]\n" for i in range(5))
    project.manifest(
        "small",
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        + items
        + "  output: results/small.jsonl\n  shards:\n    max_requests: 2\n",
    )
    project.commit()

    _apply(project)

    assert sorted(count for _, count in _jobs(emulator, "small")) == [1, 2, 2]
    assert _result_keys(project, "results/small.jsonl") == [f"request-{i}" for i in range(1, 6)]
    assert _plan(project) == ""


def test_incremental_rerun_submits_only_new_and_changed_requests(
    project: Project, emulator: EmulatorHandle
) -> None:
    keys = [f"r{i}" for i in range(10)]
    project.write("data/eval.jsonl", _lines(keys))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()
    _apply(project)
    before = {
        json.loads(line)["key"]: line
        for line in (project.root / "results/eval.jsonl").read_text().splitlines()
    }

    # r2 changes, r5 is removed, n1 and n2 are new: three requests run, eight are reused.
    edited = [k for k in keys if k != "r5"] + ["n1", "n2"]
    text = "".join(_lines([k], " edited" if k == "r2" else "") for k in edited)
    project.write("data/eval.jsonl", text)
    project.commit()
    plan = _plan(project)
    assert "2 added, 1 removed, 1 changed, 8 unchanged" in plan, plan
    assert "runs 3 request(s) in 1 job(s) (8 reused)" in plan, plan

    _apply(project)

    jobs = _jobs(emulator, "eval")
    assert [count for _, count in jobs] == [10, 3]
    after_lines = (project.root / "results/eval.jsonl").read_text().splitlines()
    after = {json.loads(line)["key"]: line for line in after_lines}
    assert sorted(after) == sorted(edited)
    for key in edited:
        if key not in ("r2", "n1", "n2"):
            assert after[key] == before[key], key  # carried over unchanged, byte for byte
    assert "edited" in after["r2"] or after["r2"] != before["r2"]
    assert _plan(project) == ""


def test_removal_only_edit_rewrites_results_without_a_job_and_converges(
    project: Project, emulator: EmulatorHandle
) -> None:
    keys = [f"r{i}" for i in range(6)]
    project.write("data/eval.jsonl", _lines(keys))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()
    _apply(project)

    project.write("data/eval.jsonl", _lines([k for k in keys if k not in ("r1", "r4")]))
    project.commit()
    plan = _plan(project)
    assert "update" in plan.lower(), plan

    _apply(project)

    assert len(_jobs(emulator, "eval")) == 1
    assert _result_keys(project, "results/eval.jsonl") == ["r0", "r2", "r3", "r5"]
    record = project.state()["resources"]["eval"]
    assert record["results"]["succeeded"] == 4
    assert _plan(project) == ""
    # A second apply changes nothing either.
    serial = project.state()["serial"]
    _apply(project)
    assert project.state()["serial"] == serial


def test_state_records_every_shard_input_file(project: Project, emulator: EmulatorHandle) -> None:
    _sharded(project, KEYS)
    _apply(project)
    record = project.state()["resources"]["big"]
    inputs = [a["input_file"] for a in record["attempts"]]
    assert len(set(inputs)) == 3 and all(inputs)
    assert not any(Path(project.root, ".reconciler/staging/big").rglob("*.jsonl"))
