"""Saved plans are verified at apply: a forged artifact (actions replaced and re-sealed with the
unkeyed sha256) is refused, and with RECONCILER_PLAN_KEY set only a plan that key signed is read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.errors import PlanError
from reconciler.plan import planfile

from .conftest import run_cli, write_project

pytestmark = pytest.mark.plan_tampering
KEY = "plan-signing-key-for-tests"


@pytest.fixture
def slow_emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    # Jobs stay RUNNING for the whole test, so a cancel would be visible.
    with running_emulator(tmp_path / "emulator", job_seconds=600) as handle:
        yield handle


def _reseal(document: dict[str, Any]) -> bytes:
    body = document["plan"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    document["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    return json.dumps(document).encode()


def _two_running_jobs(root: Path, url: str) -> tuple[dict[str, str], dict[str, Any]]:
    write_project(root, "state: state/reconciler.state.json\n")
    other = (root / "manifests" / "poems.yaml").read_text().replace("poems", "other")
    (root / "manifests" / "other.yaml").write_text(other)
    env = {"RECONCILER_ENDPOINT": url}
    created = run_cli(root, "apply", "--auto-approve", "--no-wait", env=env)
    assert created.returncode == 0, created.stderr
    state = json.loads((root / "state" / "reconciler.state.json").read_text())
    return env, state


def _job_of(state: dict[str, Any], resource: str) -> str:
    name = state["resources"][resource]["attempts"][-1]["job_name"]
    assert isinstance(name, str)
    return name


def test_forged_cancel_of_another_resources_job_is_refused(
    slow_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    env, state = _two_running_jobs(root, slow_emulator.base_url)
    plan_file = tmp_path / "plan.bin"
    assert (
        run_cli(root, "plan", "--target", "poems", "--out", str(plan_file), env=env).returncode == 0
    )
    document = json.loads(plan_file.read_bytes())
    victim = _job_of(state, "other")
    document["plan"]["actions"] = [
        {**document["plan"]["actions"][0], "kind": "cancel", "resource": "other",
         "reason": "not_desired", "job_names": [victim]}
    ]  # fmt: skip
    plan_file.write_bytes(_reseal(document))

    applied = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)

    assert applied.returncode == 1
    assert "saved plan is stale" in applied.stderr and "cancel" in applied.stderr
    assert "Traceback" not in applied.stderr
    assert slow_emulator.calls().get("batches.cancel", 0) == 0
    after = json.loads((root / "state" / "reconciler.state.json").read_text())
    assert "other" in after["resources"]


def test_signed_plan_applies_and_a_resealed_one_is_refused(
    slow_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    write_project(root, "state: state/reconciler.state.json\n")
    env = {"RECONCILER_ENDPOINT": slow_emulator.base_url, planfile.PLAN_KEY_VARIABLE: KEY}
    plan_file = tmp_path / "plan.bin"
    planned = run_cli(root, "plan", "--out", str(plan_file), env=env)
    assert planned.returncode == 0 and "signed" in planned.stderr
    document = json.loads(plan_file.read_bytes())
    document["plan"]["actions"][0]["requests"] = 1  # any change, re-sealed
    forged = tmp_path / "forged.bin"
    forged.write_bytes(_reseal(document))

    refused = run_cli(root, "apply", str(forged), "--no-wait", env=env)
    assert refused.returncode == 1 and "signature does not match" in refused.stderr
    applied = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)
    assert applied.returncode == 0, applied.stderr


def _a_plan_file(tmp_path: Path, url: str, env: dict[str, str]) -> bytes:
    root = write_project(tmp_path / "p", "state: state/reconciler.state.json\n")
    out = tmp_path / "plan.bin"
    result = run_cli(root, "plan", "--out", str(out), env={"RECONCILER_ENDPOINT": url, **env})
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def test_unsigned_plan_is_refused_when_a_key_is_set(
    slow_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    data = _a_plan_file(tmp_path, slow_emulator.base_url, {})
    with pytest.raises(PlanError, match="not signed"):
        planfile.loads(data, signing_key=KEY.encode())
    assert planfile.loads(data).actions  # without a key it still reads (then is re-derived)


def test_plan_signed_with_another_key_is_refused(
    slow_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    data = _a_plan_file(tmp_path, slow_emulator.base_url, {planfile.PLAN_KEY_VARIABLE: "other"})
    with pytest.raises(PlanError, match="signature does not match"):
        planfile.loads(data, signing_key=KEY.encode())
    document = json.loads(data)
    document["hmac_sha256"] = "0" * 64
    with pytest.raises(PlanError, match="signature does not match"):
        planfile.loads(json.dumps(document).encode(), signing_key=b"other")


@pytest.mark.parametrize(
    "changed",
    [
        "cleanup: {results: false}\n",
        *(
            pytest.param(setting, marks=pytest.mark.slow)
            for setting in (
                "cleanup: {inputs: false}\n",
                "limits: {tier: 3}\n",
                "guardrails: {max_concurrent_jobs: 1}\n",
                "vertex: {project: other-project, location: us-central1}\n",
                "prices: {gemini-2.5-flash: {input_per_million: 100}}\n",
            )
        ),
    ],
)
def test_a_plan_applied_under_other_settings_is_refused(
    slow_emulator: EmulatorHandle, tmp_path: Path, changed: str
) -> None:
    """What apply deletes, where it runs and what it may spend were reviewed with the plan."""
    root = write_project(tmp_path / "p", "state: state/reconciler.state.json\n")
    env = {"RECONCILER_ENDPOINT": slow_emulator.base_url}
    plan_file = tmp_path / "plan.bin"
    assert run_cli(root, "plan", "--out", str(plan_file), env=env).returncode == 0
    (root / "reconciler.yaml").write_text("state: state/reconciler.state.json\n" + changed)

    refused = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)

    assert refused.returncode == 1, refused.stderr
    assert "saved plan is stale: the settings of reconciler.yaml" in refused.stderr
    assert slow_emulator.calls().get("batches.create_generate", 0) == 0


@pytest.mark.slow
def test_a_forged_priority_in_a_saved_update_is_refused(
    slow_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    env, _ = _two_running_jobs(root, slow_emulator.base_url)
    manifest = root / "manifests" / "poems.yaml"
    manifest.write_text(manifest.read_text().replace("spec:\n", "spec:\n  priority: 5\n"))
    plan_file = tmp_path / "plan.bin"
    assert run_cli(root, "plan", "--out", str(plan_file), env=env).returncode == 0
    reviewed = plan_file.read_bytes()
    document = json.loads(reviewed)
    (update,) = [a for a in document["plan"]["actions"] if a["kind"] == "update"]
    (entry,) = [d for d in update["diff"] if d["path"].endswith("priority")]
    assert entry["new"] == 5
    entry["new"] = 9_000  # the reviewer sees 9000; the manifests say 5
    plan_file.write_bytes(_reseal(document))

    refused = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)

    assert refused.returncode == 1, refused.stderr
    assert "saved plan is stale" in refused.stderr and "update" in refused.stderr
    assert slow_emulator.calls().get("batches.update", 0) == 0
    plan_file.write_bytes(reviewed)  # the plan as made applies, and sets what it showed
    applied = run_cli(root, "apply", str(plan_file), "--no-wait", env=env)
    assert applied.returncode == 0, applied.stderr
    assert "set to 5" in applied.stdout + applied.stderr


def test_a_saved_plan_over_the_size_limit_is_refused_unread(
    slow_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A saved plan may come from elsewhere (a CI artifact): one of any size is not read into
    memory. A sparse file takes no disk, and would take the limit in memory if it were read."""
    root = write_project(tmp_path / "p", "state: state/reconciler.state.json\n")
    huge = tmp_path / "plan.bin"
    with huge.open("wb") as handle:
        handle.truncate(planfile.MAX_FILE_BYTES + 1)

    result = run_cli(root, "apply", str(huge), env={"RECONCILER_ENDPOINT": slow_emulator.base_url})

    assert result.returncode == 1, result.stderr
    assert f"{planfile.MAX_FILE_BYTES + 1:,} bytes, over the" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "state" / "reconciler.state.json").exists()
