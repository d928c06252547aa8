"""`reconciler plan` end to end: adoption of tagged jobs, update vs replace, JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import IdentityTag, project_token
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request

REPO = Path(__file__).resolve().parents[2]


def _one_job(project: Project, output: str = "results/eval.jsonl") -> None:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"p{i}")} for i in range(2)]),
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", output))
    project.commit()


def _plan_json(project: Project, *args: str) -> dict:
    planned = project.run("plan", "--format", "json", *args)
    assert planned.returncode == 0, planned.stderr
    return json.loads(planned.stdout)


def test_job_created_directly_with_the_identity_tag_is_adopted_not_created_again(
    project: Project, emulator: EmulatorHandle
) -> None:
    # With a project id, the project's identity does not depend on a state having been written.
    config = project.root / "reconciler.yaml"
    config.write_text(config.read_text() + "project: demo\n")
    _one_job(project)
    first = _plan_json(project)["actions"][0]
    # A crash after the service created the job but before the state was saved looks like this:
    # the job exists, tagged with this project's identity, and the state knows nothing of it.
    status = json.loads(project.run("status", "--format", "json").stdout)
    desired_hash = status["resources"][0]["desired_hash"]

    client = service_client(emulator)
    uploaded = client.files.upload(
        file=str(project.root / "data/eval.jsonl"), config={"mime_type": "jsonl"}
    )
    tag = IdentityTag("eval", desired_hash, 1, project=project_token("demo"))
    job = client.batches.create(
        model="gemini-2.5-flash", src=uploaded.name, config={"display_name": tag.display_name(None)}
    )

    plan = _plan_json(project)

    action = plan["actions"][0]
    assert first["kind"] == "create"
    assert action["kind"] == "adopt"
    assert job.name in json.dumps(action)
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0
    assert project.state()["resources"]["eval"]["attempts"][0]["job_name"] == job.name


def test_output_only_change_plans_an_update_not_a_new_job(project: Project) -> None:
    _one_job(project)
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/moved/eval.jsonl"))
    project.commit("move output")

    plan = _plan_json(project)

    action = plan["actions"][0]
    assert action["kind"] == "update"
    assert any(entry["path"] == "output" for entry in action["diff"])
    assert plan["summary"]["requests"] == 0
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0
    assert (project.root / "results/moved/eval.jsonl").read_text().count("\n") == 2
    assert project.run("plan", "--detailed-exitcode").returncode == 0


def test_json_plan_validates_against_the_published_schema(project: Project) -> None:
    _one_job(project)
    schema = json.loads((REPO / "schemas/plan.schema.json").read_text())

    plan = _plan_json(project)

    jsonschema.validate(plan, schema)
    assert plan["format_version"] >= 1
    assert {"kind", "resource", "reason", "diff"} <= set(plan["actions"][0])


def test_markdown_plan_renders_the_summary_table(project: Project) -> None:
    _one_job(project)

    planned = project.run("plan", "--format", "markdown")

    assert planned.returncode == 0, planned.stderr
    assert "|" in planned.stdout and "create" in planned.stdout.lower()
    assert "<details>" in planned.stdout


def test_usage_errors_exit_1_not_2(project: Project) -> None:
    wrong = project.run("plan", "--no-such-flag")

    assert wrong.returncode == 1
    assert "Traceback" not in wrong.stderr


def test_refresh_only_never_plans_a_create(project: Project) -> None:
    _one_job(project)

    plan = _plan_json(project, "--refresh-only")

    assert all(action["kind"] != "create" for action in plan["actions"])
