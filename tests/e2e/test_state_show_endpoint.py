"""`state show` says where each job was created: an emulator's jobs are `gemini` (it speaks the
Gemini API) with the emulator's `base_url`, so a reader never takes them for the service's."""

from __future__ import annotations

import json

from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request


def test_state_show_names_the_emulator_a_job_was_created_on(project: Project) -> None:
    project.write("data/eval.jsonl", jsonl([{"key": "k", "request": text_request("hi")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.commit()
    applied = project.run("apply", "--auto-approve", "--no-wait")
    assert applied.returncode == 0, applied.stderr

    shown = project.run("state", "show", "eval")

    assert shown.returncode == 0, shown.stderr
    (attempt,) = json.loads(shown.stdout)["attempts"]
    assert attempt["endpoint"] == "gemini"
    assert attempt["base_url"] == project.endpoint.rstrip("/")
