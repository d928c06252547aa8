"""A full run with verbose logging, against an emulator that demands the real key, leaves the key
in no file of the project and no output; the trusted endpoint is the only place it goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.emulator import running_emulator
from reconciler.live.endpoint import TRUST_VARIABLE

from .conftest import SECRET, run_cli, write_project

pytestmark = pytest.mark.secret_scan


def test_full_verbose_run_leaves_the_key_nowhere(tmp_path: Path) -> None:
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n", requests=3)
    with running_emulator(tmp_path / "emu", api_key=SECRET, job_seconds=0.3) as emu:
        env = {"GEMINI_API_KEY": SECRET, "RECONCILER_ENDPOINT": emu.base_url,
               TRUST_VARIABLE: emu.base_url}  # fmt: skip
        outputs = []
        for args in (
            ("-vv", "plan", "--out", str(root / "plan.bin")),
            ("-vv", "apply", str(root / "plan.bin"), "--wait", "--timeout", "60s"),
            ("-vv", "status"),
            ("-vv", "plan", "--format", "json"),
            ("-vv", "--debug", "state", "list"),
        ):
            result = run_cli(root, *args, env=env)
            assert result.returncode == 0, (args, result.stderr[-1500:])
            outputs.append(result.stdout + result.stderr)
        wrong = run_cli(root, "-vv", "plan", env={**env, "GEMINI_API_KEY": SECRET + "x"})
        outputs.append(wrong.stdout + wrong.stderr)
    assert (root / "results" / "poems.jsonl").is_file()
    assert all(SECRET not in text for text in outputs)
    leaked = [
        path for path in root.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaked == []
