"""`reconciler init` starts a project that applies as it is; `reconciler doctor` reports one line
per check and fails, naming the cause, for each way a setup can be broken."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.doctor_cmd import FILES_STORAGE_LIMIT, Outcome, quota_checks
from reconciler.cli.init_cmd import project_id
from reconciler.cli.main import cli
from reconciler.clock import SystemClock
from reconciler.config import load_project
from reconciler.emulator import EmulatorHandle
from reconciler.live.endpoint import resolve_endpoint
from reconciler.live.gemini import connect
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request
from tests.e2e.test_gcs_output import BUCKET, gcs  # noqa: F401  (the GCS emulator fixture)

KEY = "AIza-doctor-test-key-never-printed"


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    full_env.pop("GEMINI_API_KEY", None)
    full_env.pop("GOOGLE_API_KEY", None)
    full_env.update({"NO_COLOR": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )


def _lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    """`name: detail` -> outcome, for each line doctor printed."""
    found = {}
    for line in result.stdout.splitlines():
        outcome, _, rest = line.partition("  ")
        found[rest.strip()] = outcome.strip()
    return found


def _failed(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL")]


def test_project_id_is_derived_from_the_directory_name_and_a_suffix() -> None:
    assert project_id("My Batch_Project", "0a1b2c") == "my-batch-project-0a1b2c"
    assert project_id("--", "0a1b2c") == "reconciler-0a1b2c"
    assert len(project_id("a" * 100)) == 63
    assert re.fullmatch(r"a+-[0-9a-f]{6}", project_id("a" * 100))


def test_two_directories_of_one_name_get_different_project_ids(tmp_path: Path) -> None:
    """Two teams' `evals` repositories on one API key must not share identity tags."""
    ids = []
    for team in ("team-a", "team-b"):
        root = tmp_path / team / "evals"
        root.mkdir(parents=True)
        assert _run(root, "init").returncode == 0
        found = re.search(r"^project: (\S+)$", (root / "reconciler.yaml").read_text(), re.M)
        assert found is not None and found.group(1).startswith("evals-")
        ids.append(found.group(1))
    assert ids[0] != ids[1]


def test_init_makes_a_project_that_validates_doctors_and_applies(tmp_path: Path) -> None:
    root = tmp_path / "Hello Batch"
    root.mkdir()
    made = _run(root, "init")
    assert made.returncode == 0, made.stderr
    assert re.search(
        r"^project: hello-batch-[0-9a-f]{6}$", (root / "reconciler.yaml").read_text(), re.M
    )
    assert "endpoint: emulator\n" in (root / "reconciler.yaml").read_text()
    manifest = (root / "manifests" / "questions.yaml").read_text()
    assert manifest.startswith("#") and "file: data/questions.jsonl" in manifest
    assert (root / "data" / "questions.jsonl").read_text().count("\n") == 2
    assert (root / ".gitignore").read_text().splitlines() == [
        ".reconciler/",
        "*.lock",
        "*.backup",
        "*.journal",
    ]
    assert _run(root, "validate").returncode == 0
    doctor = _run(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert not _failed(doctor)


def test_init_refuses_to_overwrite_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "questions.yaml").write_text("mine\n")
    refused = _run(tmp_path, "init")
    assert refused.returncode == 1
    assert f"{tmp_path / 'manifests' / 'questions.yaml'} already exists" in refused.stderr
    assert (tmp_path / "manifests" / "questions.yaml").read_text() == "mine\n"
    assert not (tmp_path / "reconciler.yaml").exists(), "nothing is written when one file exists"


def test_init_adds_only_missing_lines_to_an_existing_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\n*.lock")
    assert _run(tmp_path, "init", "--name", "first-job").returncode == 0
    assert (
        tmp_path / ".gitignore"
    ).read_text() == "node_modules/\n*.lock\n.reconciler/\n*.backup\n*.journal\n"
    assert (tmp_path / "manifests" / "first-job.yaml").exists()


# doctor: each check's failure, against the emulator.


def test_doctor_fails_without_a_key_and_never_prints_one(project: Project) -> None:
    result = project.run("--endpoint", "gemini", "doctor", env={"GEMINI_API_KEY": ""})
    assert result.returncode == 1
    assert (
        _lines(result)["api key: set GOOGLE_API_KEY or GEMINI_API_KEY (the key is never printed)"]
        == "FAIL"
    )
    assert _lines(result)["endpoint: no API key"] == "skip"


def test_doctor_reports_a_set_key_by_its_variable_only(project: Project) -> None:
    # The SDK's base-URL override points at a closed port, so nothing leaves this machine: the
    # endpoint fails, the key line passes, and the key appears nowhere.
    env = {
        "GEMINI_API_KEY": KEY,
        "GOOGLE_API_KEY": "",
        "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
    }
    result = project.run("--endpoint", "gemini", "doctor", env=env)
    assert result.returncode == 1
    assert "ok    api key: GEMINI_API_KEY is set" in result.stdout
    assert KEY not in result.stdout + result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_doctor_fails_when_the_endpoint_does_not_answer(project: Project) -> None:
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    result = project.run(
        "doctor", env={"RECONCILER_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    )
    assert result.returncode == 1
    [line] = _failed(result)
    assert line.startswith("FAIL  endpoint: http://127.0.0.1:")


def test_doctor_fails_for_a_model_that_is_not_a_batch_model(project: Project) -> None:
    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    project.manifest(
        "eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl", model="gemini-0.1-nope")
    )
    project.write(
        "data/v.jsonl", jsonl([{"key": "a", "request": {"content": {"parts": [{"text": "x"}]}}}])
    )
    project.manifest(
        "vectors", file_job_spec("data/v.jsonl", "results/v.jsonl", extra="  task: embed\n")
    )
    result = project.run("doctor")
    assert result.returncode == 1
    assert _failed(result) == [
        "FAIL  model: gemini-0.1-nope is not a known batch model (add it to `prices:` if it is new)",
        "FAIL  model: gemini-2.5-flash does not serve task `embed`",
    ]


def test_doctor_fails_when_manifests_are_invalid(project: Project) -> None:
    project.manifest("eval", "  model: 3\n")
    result = project.run("doctor")
    assert result.returncode == 1
    assert _failed(result)[0].startswith("FAIL  manifests: ")


def test_doctor_fails_when_the_running_jobs_reach_the_ceiling(
    project: Project, emulator: EmulatorHandle
) -> None:
    project.write(
        "reconciler.yaml",
        "manifests: manifests\nstate: state/reconciler.state.json\n"
        "guardrails:\n  max_concurrent_jobs: 1\n",
    )
    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    emulator.configure(job_seconds=60)
    assert project.run("apply", "--auto-approve", "--no-wait").returncode == 0
    result = project.run("doctor")
    assert result.returncode == 1
    assert _failed(result) == [
        "FAIL  jobs running: 1 of at most 1 (guardrails.max_concurrent_jobs)"
    ]


async def _snapshot(base_url: str):
    endpoint = resolve_endpoint(base_url, api_version="v1beta", environ={})
    adapter = connect(endpoint, clock=SystemClock())
    try:
        return await adapter.snapshot(include_files=True)
    finally:
        await adapter.aclose()


def test_doctor_fails_when_files_storage_is_full(
    project: Project, emulator: EmulatorHandle
) -> None:
    import asyncio

    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    assert project.run("apply", "--auto-approve", "--wait").returncode == 0
    live = asyncio.run(_snapshot(str(emulator.base_url)))
    used = sum(f.size_bytes for f in live.files.values())
    assert used > 0
    config = load_project(project.root).config
    [_, storage] = quota_checks(config, live, storage_limit=used)
    assert storage.outcome is Outcome.FAIL
    [_, roomy] = quota_checks(config, live)
    assert roomy.outcome is Outcome.OK and used < FILES_STORAGE_LIMIT


@pytest.fixture
def no_psycopg(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The postgres extra not installed: a None in sys.modules makes its import fail."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    yield


def test_doctor_validate_and_plan_fail_early_when_the_state_needs_a_missing_extra(
    project: Project, no_psycopg: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_ENDPOINT", project.endpoint)
    monkeypatch.setenv("RECONCILER_STATE", "postgresql://u@127.0.0.1:1/db?workspace=w")
    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    runner = CliRunner()
    install = "pip install 'gemini-batch-reconciler[postgres]'"
    doctor = runner.invoke(cli, ["-C", str(project.root), "doctor"])
    assert doctor.exit_code == 1
    assert f"FAIL  extra postgres: the PostgreSQL state needs psycopg: {install}" in doctor.output
    for command in ("validate", "plan"):
        result = runner.invoke(cli, ["-C", str(project.root), command])
        assert result.exit_code == 1, command
        assert "the PostgreSQL state needs psycopg" in result.output
        assert install in result.output


@pytest.mark.usefixtures("gcs")
def test_doctor_checks_gcs_access_and_fails_for_a_bucket_it_cannot_reach(
    project: Project,
) -> None:
    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", f"gs://{BUCKET}/evals/eval.jsonl"))
    reachable = project.run("doctor")
    assert reachable.returncode == 0, reachable.stdout + reachable.stderr
    assert f"ok    gcs access: gs://{BUCKET}/evals/eval.jsonl is reachable" in reachable.stdout
    project.manifest("eval", file_job_spec("data/eval.jsonl", "gs://no-such-bucket/eval.jsonl"))
    result = project.run("doctor")
    assert result.returncode == 1
    [line] = _failed(result)
    assert line.startswith("FAIL  gcs access: cannot list gs://no-such-bucket/")


def test_doctor_validate_and_plan_fail_early_when_an_output_needs_a_missing_extra(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    monkeypatch.setenv("RECONCILER_ENDPOINT", project.endpoint)
    project.write("data/eval.jsonl", jsonl([{"key": "a", "request": text_request("x")}]))
    project.manifest("eval", file_job_spec("data/eval.jsonl", "gs://team-bucket/evals/eval.jsonl"))
    runner = CliRunner()
    install = "pip install 'gemini-batch-reconciler[gcs]'"
    doctor = runner.invoke(cli, ["-C", str(project.root), "doctor"])
    assert doctor.exit_code == 1
    assert (
        f"FAIL  extra gcs: output gs://team-bucket/evals/eval.jsonl of eval needs google-cloud-storage: {install}"
        in doctor.output
    )
    for command in ("validate", "plan", "apply"):
        result = runner.invoke(
            cli,
            ["-C", str(project.root), command, *(["--auto-approve"] if command == "apply" else [])],
        )
        assert result.exit_code == 1, command
        assert install in result.output, command
    assert not (project.root / "state").exists(), "nothing ran: no state was written"
