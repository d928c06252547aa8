"""`apply --format json` and `destroy --format json`: one JSON object per line on stdout, each
valid against the published schema (schemas/events.schema.json), in Terraform's `-json` shape:
a version line, the planned changes and their summary, the run's events, an outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "events.schema.json").read_text()
)


def _lines(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for line in lines:
        validator.validate(line)
    return lines


def test_a_real_apply_and_destroy_stream_valid_json_lines_from_version_to_outcome(
    project: Project, emulator: EmulatorHandle
) -> None:
    lines = [{"key": f"k{i}", "request": text_request(f"prompt {i}")} for i in range(3)]
    project.write("data/eval.jsonl", jsonl(lines))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()

    applied = project.run("apply", "--auto-approve", "--wait", "--format", "json")

    assert applied.returncode == 0, applied.stderr
    stream = _lines(applied.stdout)
    assert [line["type"] for line in stream[:3]] == ["version", "planned_change", "change_summary"]
    assert stream[1]["resource"] == "eval" and stream[1]["action"] == "create"
    assert stream[-1]["type"] == "outcome" and stream[-1]["status"] == "complete"
    phases = [line["phase"] for line in stream if line["type"] == "phase"]
    assert phases[0] == "preparing" and phases[-1] == "collected"
    assert {"uploading", "creating", "downloading"} <= set(phases)
    assert all(line["@timestamp"].endswith("Z") for line in stream)

    destroyed = project.run("destroy", "--auto-approve", "--format", "json")

    assert destroyed.returncode == 0, destroyed.stderr
    stream = _lines(destroyed.stdout)
    assert stream[2]["operation"] == "destroy"
    assert any(line["type"] == "step" and line["resource"] == "eval" for line in stream)
    assert stream[-1]["status"] == "complete"


def test_json_output_cannot_ask_for_confirmation(project: Project) -> None:
    project.write("data/eval.jsonl", jsonl([{"key": "k", "request": text_request("p")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))

    refused = project.run("apply", "--format", "json")

    assert refused.returncode == 1
    assert "--format json cannot ask for confirmation" in refused.stderr
    assert "--auto-approve" in refused.stderr
