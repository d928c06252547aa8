"""status, results, destroy, import, --prune, and failures that stay with their resource."""

from __future__ import annotations

import json

from reconciler.emulator import EmulatorHandle
from reconciler.live.tags import project_token
from tests.e2e.conftest import Project, file_job_spec, jsonl, service_client, text_request


def _eval(project: Project, n: int = 2) -> None:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"p{i}")} for i in range(n)]),
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))


def test_status_and_results_report_where_everything_stands(project: Project) -> None:
    _eval(project)
    project.commit()
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0

    status = json.loads(project.run("status", "--format", "json").stdout)
    results = project.run("results", "eval")
    printed = project.run("results", "eval", "--print")

    row = status["resources"][0]
    assert (row["resource"], row["live"], row["results"], row["succeeded"]) == (
        "eval",
        "SUCCEEDED",
        "results/eval.jsonl",
        2,
    )
    assert row["next_action"] == "noop"
    assert "2 succeeded, 0 failed" in results.stdout and "results/eval.jsonl" in results.stdout
    assert [json.loads(line)["key"] for line in printed.stdout.splitlines()] == ["k0", "k1"]


def test_results_of_an_unknown_resource_is_a_clear_error(project: Project) -> None:
    missing = project.run("results", "nope")

    assert missing.returncode == 1
    assert "no resource named 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_destroy_cancels_running_jobs_forgets_them_and_prunes_files(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(job_seconds=60)
    _eval(project)
    project.commit()
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    attempt = project.state()["resources"]["eval"]["attempts"][0]

    destroyed = project.run("destroy", "--auto-approve", "--prune")

    assert destroyed.returncode == 0, destroyed.stderr
    assert project.state()["resources"] == {}
    client = service_client(emulator)
    assert client.batches.get(name=attempt["job_name"]).state.name == "JOB_STATE_CANCELLED"
    assert attempt["input_file"] not in {f.name for f in client.files.list()}


def test_import_adopts_a_job_created_by_hand(project: Project, emulator: EmulatorHandle) -> None:
    _eval(project)
    project.commit()
    client = service_client(emulator)
    uploaded = client.files.upload(
        file=str(project.root / "data/eval.jsonl"), config={"mime_type": "jsonl"}
    )
    job = client.batches.create(
        model="gemini-2.5-flash", src=uploaded.name, config={"display_name": "by hand"}
    )

    imported = project.run("import", "eval", job.name)

    assert imported.returncode == 0, imported.stderr
    assert project.state()["resources"]["eval"]["attempts"][0]["job_name"] == job.name
    applied = project.run("apply", "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stderr
    assert "created" not in applied.stderr
    assert len((project.root / "results/eval.jsonl").read_text().splitlines()) == 2


def _job_tagged(project: Project, emulator: EmulatorHandle, owner: str) -> str:
    client = service_client(emulator)
    uploaded = client.files.upload(
        file=str(project.root / "data/eval.jsonl"), config={"mime_type": "jsonl"}
    )
    job = client.batches.create(
        model="gemini-2.5-flash",
        src=uploaded.name,
        config={"display_name": f"eval [rc:{owner}/eval@0123456789ab:1]"},
    )
    assert job.name is not None
    return job.name


def test_import_refuses_a_job_another_project_made_unless_taken_over(
    project: Project, emulator: EmulatorHandle
) -> None:
    """Imported, another project's job would be cancelled by this one's destroy and its results
    deleted by this one's cleanup before their owner collects them."""
    _eval(project)
    project.commit()
    job_name = _job_tagged(project, emulator, "deadbeef")

    refused = project.run("import", "eval", job_name)

    assert refused.returncode == 1
    assert "belongs to another reconciler project" in refused.stderr
    assert "--take-over" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (project.root / "state/reconciler.state.json").exists()
    taken = project.run("import", "eval", job_name, "--take-over")
    assert taken.returncode == 0, taken.stderr
    assert project.state()["resources"]["eval"]["attempts"][0]["job_name"] == job_name


def test_import_takes_a_job_whose_tag_names_this_project(
    project: Project, emulator: EmulatorHandle
) -> None:
    """A state lost and rebuilt keeps the `project:` id: the job's tag names this project."""
    settings = project.root / "reconciler.yaml"
    settings.write_text("project: e2e-evals\n" + settings.read_text())
    _eval(project)
    project.commit()
    job_name = _job_tagged(project, emulator, project_token("e2e-evals"))

    imported = project.run("import", "eval", job_name)

    assert imported.returncode == 0, imported.stderr
    assert project.state()["resources"]["eval"]["attempts"][0]["job_name"] == job_name


def test_a_permanent_error_fails_its_resource_while_the_others_converge(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(max_file_bytes=300)
    _eval(project, n=20)  # well over 300 bytes: the Files API refuses the upload
    project.manifest(
        "small",
        "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'hi'}]}]\n  output: results/small.jsonl\n",
    )
    project.commit()

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 1
    assert "eval" in applied.stderr and "files.upload" in applied.stderr
    assert "Traceback" not in applied.stderr
    assert (project.root / "results/small.jsonl").exists()


def test_an_unchanged_input_is_not_uploaded_again_for_a_resubmit(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(fail_next_jobs=1)
    _eval(project)
    project.commit()
    emulator.reset_calls()

    assert project.run("apply", "--auto-approve", "--wait").returncode == 0

    calls = emulator.calls()
    assert calls.get("files.upload_multipart") == 1
    assert calls.get("batches.create_generate") == 2


def test_service_options_in_config_are_sent_and_the_job_runs(project: Project) -> None:
    project.write("data/eval.jsonl", jsonl([{"key": "k0", "request": text_request("p0")}]))
    project.manifest(
        "eval",
        file_job_spec(
            "data/eval.jsonl",
            "results/eval.jsonl",
            extra="  config:\n    display_name: nightly\n    priority: 5\n",
        ),
    )
    project.commit()

    applied = project.run("apply", "--auto-approve", "--wait")

    assert applied.returncode == 0, applied.stderr
    assert project.state()["resources"]["eval"]["results"]["succeeded"] == 1
