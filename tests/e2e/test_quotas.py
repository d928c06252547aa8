"""The service's quotas through the CLI: enqueued tokens per model and Files storage, shown by
`plan` and respected by `apply`, against the emulator enforcing the same limits (small ones)."""

from __future__ import annotations

import json
from collections import Counter

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, service_client, text_request
from tests.e2e.test_converge_one_run import _jobs_per_resource

PROJECT = (
    "manifests: manifests\nstate: state/reconciler.state.json\n"
    "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n"
)


def _resources(project: Project, count: int, *, size: int = 1_000) -> list[str]:
    """`count` resources of one file input each, of about `size` bytes (~size/4 tokens)."""
    names = [f"r{i}" for i in range(count)]
    for name in names:
        line = {"key": "a", "request": text_request("x")}
        pad = size - len(json.dumps(line)) - 1
        line["request"] = text_request("x" * max(1, pad - 2))
        project.write(f"data/{name}.jsonl", json.dumps(line) + "\n")
        project.manifest(name, file_job_spec(f"data/{name}.jsonl", f"results/{name}.jsonl"))
    return names


def test_plan_shows_enqueued_tokens_against_the_limit_and_apply_starts_them_in_waves(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write(
        "reconciler.yaml", PROJECT + "limits:\n  enqueued_tokens:\n    gemini-2.5-flash: 600\n"
    )
    names = _resources(project, 6)  # ~250 tokens each: two fit at once
    emulator.configure(max_enqueued_tokens=700, job_seconds=0.5)

    planned = project.run("plan")
    assert planned.returncode in (0, 2), planned.stderr
    assert "2 job(s) start now, 4 more in 2 waves as capacity frees" in planned.stdout
    assert "estimated enqueued input tokens: gemini-2.5-flash ~500 enqueued" in planned.stdout
    assert "waiting of 600" in planned.stdout

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "120", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(project.state()["resources"][n]["results"] is not None for n in names)
    assert _jobs_per_resource(emulator) == Counter(dict.fromkeys(names, 1))
    assert emulator.calls()["batches.create_generate"] == 6, "no create was refused"


def test_apply_waits_out_a_service_that_refuses_below_the_declared_token_limit(
    project: Project, emulator: EmulatorHandle
) -> None:
    names = _resources(project, 4)  # the tier-1 default (3 M) would admit all four
    emulator.configure(max_enqueued_tokens=600, job_seconds=0.5)

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "120", timeout=180)

    assert result.returncode == 0, result.stderr[-3000:]
    assert emulator.calls()["batches.create_generate"] > 4, "the service refused some creates"
    assert all(project.state()["resources"][n]["results"] is not None for n in names)
    assert _jobs_per_resource(emulator) == Counter(dict.fromkeys(names, 1))


def test_apply_no_wait_creates_what_fits_the_tokens_and_says_what_waits(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write(
        "reconciler.yaml", PROJECT + "limits:\n  enqueued_tokens:\n    gemini-2.5-flash: 600\n"
    )
    names = _resources(project, 3)
    emulator.configure(job_seconds=30)

    result = project.run("apply", "--auto-approve", "--no-wait")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 resource(s) wait for capacity" in result.stderr
    assert sorted(_jobs_per_resource(emulator)) == names[:2]


def test_a_job_larger_than_its_models_token_limit_fails_the_plan_naming_it(
    project: Project,
) -> None:
    project.write(
        "reconciler.yaml", PROJECT + "limits:\n  enqueued_tokens:\n    gemini-2.5-flash: 100\n"
    )
    _resources(project, 1)

    planned = project.run("plan")

    assert planned.returncode == 1
    assert "resource r0" in planned.stderr and "shard the input" in planned.stderr


def test_inputs_are_deleted_once_collected_and_uploaded_again_when_needed(
    project: Project, emulator: EmulatorHandle
) -> None:
    _resources(project, 1)
    client = service_client(emulator)

    first = project.run("apply", "--auto-approve", "--wait", "--timeout", "60")

    assert first.returncode == 0, first.stderr[-3000:]
    (attempt,) = project.state()["resources"]["r0"]["attempts"]
    assert attempt["input_deleted_at"] is not None
    at_service = {f.name for f in client.files.list()}
    assert attempt["input_file"] not in at_service
    # The service refuses to delete its generated results files: kept, listed, recorded.
    assert attempt["output_file"] in at_service
    assert attempt["output_kept"] and "expires after 48 h" in attempt["output_kept"]
    assert f"would not delete: {attempt['output_file']} (r0)" in first.stderr
    status = project.run("status")
    assert f"r0: the service would not delete {attempt['output_file']}" in status.stdout

    again = project.run("apply", "--auto-approve", "--wait", "--replace", "r0", "--timeout", "60")

    assert again.returncode == 0, again.stderr[-3000:]
    second = project.state()["resources"]["r0"]["attempts"][-1]
    assert second["input_file"] != attempt["input_file"], "uploaded again"
    assert second["state"] == "SUCCEEDED" and second["input_deleted_at"] is not None
    assert "deleted results file" not in again.stderr and "could not delete" not in again.stderr


def test_results_files_are_deleted_where_the_service_allows_and_cleanup_can_be_off(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write("reconciler.yaml", PROJECT + "cleanup:\n  inputs: false\n")
    _resources(project, 1)
    emulator.configure(undeletable_result_files=False)

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "60")

    assert result.returncode == 0, result.stderr[-3000:]
    (attempt,) = project.state()["resources"]["r0"]["attempts"]
    client = service_client(emulator)
    at_service = {f.name for f in client.files.list()}
    assert attempt["input_file"] in at_service and attempt["input_deleted_at"] is None
    assert attempt["output_file"] not in at_service and attempt["output_deleted_at"]


def test_uploads_past_the_files_storage_wait_for_collected_inputs_to_be_deleted(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write("reconciler.yaml", PROJECT + "limits:\n  storage_bytes: 2500\n")
    names = _resources(project, 4)  # 1 kB each: two fit at once
    emulator.configure(job_seconds=0.5)

    planned = project.run("plan")
    assert "Files storage: 0 B in use + 4.0 kB to upload, more than the project's 2.5 kB" in (
        planned.stdout
    )

    result = project.run("apply", "--auto-approve", "--wait", "--timeout", "120", timeout=180)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "would pass the project's Files storage" in result.stderr
    assert all(project.state()["resources"][n]["results"] is not None for n in names)
    assert emulator.calls()["files.upload_multipart"] == 4, "none refused by the service"


def test_an_upload_that_can_never_fit_the_storage_fails_its_resource_with_the_numbers(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write("reconciler.yaml", PROJECT + "limits:\n  storage_bytes: 2500\n")
    _resources(project, 1)
    client = service_client(emulator)
    held = project.write("held.jsonl", "x" * 2000)
    client.files.upload(file=str(held), config={"mime_type": "application/jsonl"})

    result = project.run("apply", "--auto-approve", "--no-wait")

    assert result.returncode == 1
    assert (
        "r0: failed: uploading 997 B would pass the project's Files storage (2.0 kB in use "
    ) in result.stderr
    assert "of 2.5 kB, limits.storage_bytes)" in result.stderr
