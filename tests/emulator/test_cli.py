"""`reconciler emulator serve` flags map onto EmulatorSettings."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli.emulator_cmd import emulator


def test_serve_help_lists_fault_and_quirk_flags() -> None:
    result = CliRunner().invoke(emulator, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--job-seconds",
        "--api-key",
        "--rate-429",
        "--drop-rate",
        "--fail-next-jobs",
        "--results-delay",
        "--shuffle-inline-responses",
        "--undeletable-result-files",
    ):
        assert flag in result.output


def test_serve_refuses_a_probability_above_one() -> None:
    result = CliRunner().invoke(emulator, ["serve", "--rate-429", "2", "--data-dir", "unused"])
    assert result.exit_code != 0
    assert "rate_429 must be within [0, 1]" in result.output


def test_serve_on_port_zero_prints_the_port_it_listens_on(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0"]
    command += ["--data-dir", str(tmp_path / "data"), "--log-level", "warning"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert server.stderr is not None
        banner = server.stderr.readline()
        match = re.match(r"emulator: http://127\.0\.0\.1:(\d+) ", banner)
        assert match is not None, banner
        port = int(match.group(1))
        assert port != 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1beta/models?key=k") as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
