"""Model names are checked before anything is paid for: at `validate` against the bundled
catalogue, at `plan` / `apply` against the endpoint's `models.get`."""

from __future__ import annotations

import dataclasses

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request


def _job(project: Project, model: str, extra: str = "") -> None:
    project.write("data/in.jsonl", jsonl([{"key": "k", "request": text_request("p")}]))
    project.manifest(
        "eval", file_job_spec("data/in.jsonl", "results/eval.jsonl", model=model, extra=extra)
    )
    project.commit()


def test_a_misspelled_model_fails_validate_with_a_suggestion(project: Project) -> None:
    _job(project, "gemini-2.5-flsh")
    result = project.run("validate")
    assert result.returncode == 1
    assert (
        "error: unknown model `gemini-2.5-flsh` (did you mean `gemini-2.5-flash`?)" in result.stderr
    )
    assert "manifests/eval.yaml:" in result.stderr


def test_a_misspelled_model_fails_apply_with_nothing_uploaded(
    project: Project, emulator: EmulatorHandle
) -> None:
    _job(project, "gemini-2.5-flsh")
    emulator.reset_calls()
    result = project.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert "did you mean `gemini-2.5-flash`?" in result.stderr
    assert not any(route.startswith(("files.", "batches.create")) for route in emulator.calls())


def test_a_model_the_service_does_not_know_fails_plan_naming_the_resource(
    project: Project, emulator: EmulatorHandle
) -> None:
    _job(project, "brand-new-model")
    validated = project.run("validate")
    assert validated.returncode == 0 and "warning: model `brand-new-model`" in validated.stderr
    emulator.reset_calls()
    planned = project.run("plan")
    assert planned.returncode == 1
    assert "resource `eval`: model `brand-new-model` is not known to the service" in planned.stderr
    applied = project.run("apply", "--auto-approve")
    assert applied.returncode == 1
    assert emulator.calls().get("models.get") == 2
    assert not any(
        route.startswith(("files.upload", "batches.create")) for route in emulator.calls()
    )
    # Once the service lists it, the same manifests plan.
    known = emulator.catalogue.get("gemini-2.5-flash")
    assert known is not None
    emulator.catalogue.put(dataclasses.replace(known, id="brand-new-model"))
    assert project.run("plan").returncode == 0


def test_a_model_without_the_task_method_fails_plan(
    project: Project, emulator: EmulatorHandle
) -> None:
    embedder = emulator.catalogue.get("gemini-embedding-001")
    assert embedder is not None
    emulator.catalogue.put(dataclasses.replace(embedder, id="fresh-embedder"))
    _job(project, "fresh-embedder")
    planned = project.run("plan")
    assert planned.returncode == 1
    assert "does not support batchGenerateContent (task: generate)" in planned.stderr
