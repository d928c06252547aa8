"""Errors that say where: outside a project every command that needs one names the missing
reconciler.yaml and leaves nothing behind; Terraform's single-dash flags get the right spelling;
a service that cannot be reached is one line naming the host and the cause, without retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["apply", "--auto-approve"],
        ["destroy", "--auto-approve"],
        ["status"],
        ["cost"],
        ["state", "list"],
        ["force-unlock", "some-id"],
    ],
    ids=lambda command: command[0] if command[0] != "state" else "state-list",
)
def test_outside_a_project_a_command_names_the_missing_project_file_and_writes_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    result = _run(tmp_path, *command)

    assert result.returncode == 1
    assert f"Error: no reconciler.yaml found in {tmp_path} or any parent" in result.stderr
    assert "reconciler init" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "no state, lock or scratch file is left behind"


def test_a_project_directory_without_its_file_is_named(tmp_path: Path) -> None:
    result = _run(tmp_path, "-C", str(tmp_path), "destroy", "--auto-approve")

    assert result.returncode == 1
    assert f"Error: no reconciler.yaml found in {tmp_path}\n" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        (["apply", "-auto-approve"], "--auto-approve"),
        (["plan", "-json"], "--format json"),
        (["plan", "-target=eval"], "--target eval"),
    ],
)
def test_a_terraform_single_dash_flag_gets_the_right_spelling(
    tmp_path: Path, typed: list[str], meant: str
) -> None:
    result = _run(tmp_path, *typed)

    assert result.returncode == 1
    assert f"did you mean `{meant}`?" in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


@pytest.mark.parametrize(
    ("endpoint", "cause"),
    [
        (f"http://127.0.0.1:{_closed_port()}", "cannot reach 127.0.0.1: connection refused"),
        ("http://reconciler-test.invalid", "cannot reach reconciler-test.invalid: name lookup"),
    ],
    ids=["refused", "no-such-host"],
)
def test_a_service_that_cannot_be_reached_is_one_line_with_host_cause_and_hint(
    tmp_path: Path, endpoint: str, cause: str
) -> None:
    (tmp_path / "reconciler.yaml").write_text("manifests: manifests\n")
    (tmp_path / "manifests").mkdir()

    result = _run(tmp_path, "--endpoint", endpoint, "-v", "plan")

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {cause}"), result.stderr
    assert "Hint: check the network" in result.stderr
    assert "Traceback" not in result.stderr
    # Refused at once: the maintainers' log (-v) shows no retry of the call.
    assert "retrying after" not in result.stderr, result.stderr
