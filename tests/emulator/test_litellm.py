"""LiteLLM's Gemini batch path against the emulator: its Developer API files and batches calls
(`custom_llm_provider="gemini"` with `api_base` pointing here), not its Vertex path.

LiteLLM is the optional `litellm` extra (pyproject.toml says why it is not in `test`); without
it this test skips. Its own cost map is read from the wheel, never fetched
(`LITELLM_LOCAL_MODEL_COST_MAP`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import running_emulator

pytestmark = pytest.mark.slow


def _litellm(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("LITELLM_TELEMETRY", "False")
    return pytest.importorskip(
        "litellm", reason="the litellm extra is not installed: pip install -e '.[litellm]'"
    )


def test_litellm_uploads_runs_and_reads_a_gemini_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    litellm = _litellm(monkeypatch)
    rows = "".join(
        json.dumps({"key": key, "request": {"contents": [{"parts": [{"text": key}]}]}}) + "\n"
        for key in ("a", "b")
    )
    with running_emulator(tmp_path / "emulator", job_seconds=0.2) as emu:
        where: dict[str, Any] = {
            "custom_llm_provider": "gemini",
            "api_base": emu.base_url,
            "api_key": "test",
        }
        model = {"model": "gemini/gemini-2.5-flash"}
        uploaded = litellm.create_file(
            file=("input.jsonl", rows.encode(), "application/jsonl"), purpose="batch", **where
        )
        assert uploaded.bytes == len(rows)
        created = litellm.create_batch(
            completion_window="24h",
            endpoint="/v1/chat/completions",
            input_file_id=uploaded.id,
            **model,
            **where,
        )
        assert created.request_counts.total == 2
        deadline = time.monotonic() + 30
        while (
            job := litellm.retrieve_batch(batch_id=created.id, **model, **where)
        ).status != "completed":
            assert job.status in ("validating", "in_progress"), job
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert (job.request_counts.completed, job.request_counts.failed) == (2, 0)
        assert job.output_file_id == f"batch-{created.id}"
        content = litellm.file_content(file_id=job.output_file_id, **where).content
        lines = [json.loads(line) for line in content.decode().splitlines()]
        assert [line["key"] for line in lines] == ["a", "b"]
        assert litellm.file_retrieve(file_id=uploaded.id, **where).bytes == len(rows)
        assert litellm.file_delete(file_id=uploaded.id, **where).deleted is True
