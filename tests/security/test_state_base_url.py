"""A `base_url` with credentials in a document the tool did not write (`state push`, a hand
edit) is stored without them: the state never holds a secret, whoever wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.state.document import JobAttempt

from .conftest import run_cli, write_project

pytestmark = pytest.mark.secret_scan

SECRET = "b4seUrlS3cret"


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        (
            f"https://user:{SECRET}@proxy.example:8443/g?key={SECRET}#x",
            "https://proxy.example:8443/g",
        ),
        (f"http://{SECRET}@[::1]:8765", "http://[::1]:8765"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("emulator", "emulator"),
    ],
)
def test_an_attempts_base_url_keeps_no_credentials(written: str, kept: str) -> None:
    attempt = JobAttempt.model_validate(
        {"number": 1, "tag": "t", "spec_hash": "h", "intent_at": "2026-01-01T00:00:00Z",
         "base_url": written}
    )  # fmt: skip
    assert attempt.base_url == kept


def test_a_pushed_state_with_credentials_in_a_base_url_stores_none(tmp_path: Path) -> None:
    root = write_project(tmp_path / "repo", "state: state/reconciler.state.json\n")
    attempt = {
        "number": 1,
        "tag": "[rc:poems@aaaaaaaaaaaa:1]",
        "spec_hash": "a" * 64,
        "job_name": "batches/x",
        "state": "SUCCEEDED",
        "intent_at": "2026-01-01T00:00:00Z",
        "endpoint": "gemini",
        "base_url": f"http://user:{SECRET}@127.0.0.1:1/?key={SECRET}",
    }
    document = {
        "format_version": 7,
        "lineage": "00000000-0000-4000-8000-000000000001",
        "serial": 1,
        "resources": {"poems": {"name": "poems", "spec_hash": "a" * 64, "attempts": [attempt]}},
    }
    pushed = tmp_path / "pushed.json"
    pushed.write_text(json.dumps(document))

    result = run_cli(root, "state", "push", str(pushed), env={"RECONCILER_ENDPOINT": "emulator"})

    assert result.returncode == 0, result.stderr[-800:]
    leaked = [p for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []
    shown = run_cli(root, "state", "show", "poems", env={"RECONCILER_ENDPOINT": "emulator"})
    assert '"base_url": "http://127.0.0.1:1/"' in shown.stdout, shown.stdout + shown.stderr
