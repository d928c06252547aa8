"""Fixtures for the emulator suite: an in-process emulator and real google-genai clients on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.emulator.rows import BatchRow

JOB_SECONDS = 0.3
TERMINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator-data", job_seconds=JOB_SECONDS) as handle:
        yield handle


def make_client(emu: EmulatorHandle, **http_options: object) -> genai.Client:
    return genai.Client(api_key="test", http_options={"base_url": emu.base_url, **http_options})


@pytest.fixture
def client(emu: EmulatorHandle) -> genai.Client:
    return make_client(emu)


def wait_for_end(client: genai.Client, name: str, timeout: float = 10.0) -> types.BatchJob:
    deadline = time.monotonic() + timeout
    while True:
        job = client.batches.get(name=name)
        assert job.state is not None
        if job.state.name in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"{name} still {job.state.name}"
        time.sleep(0.02)


def write_jsonl(path: Path, lines: list[dict[str, object]]) -> Path:
    import json

    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def upload_jsonl(client: genai.Client, path: Path, lines: list[dict[str, object]]) -> types.File:
    write_jsonl(path, lines)
    return client.files.upload(file=str(path), config={"mime_type": "jsonl"})


def text_request(key: str, text: str) -> dict[str, object]:
    return {"key": key, "request": {"contents": [{"parts": [{"text": text}]}]}}


def batch_row(**changes: Any) -> BatchRow:
    """A stored job's row: a 400-request file job created at 1000.0, with `changes`."""
    fields: dict[str, Any] = {
        "id": "b1",
        "kind": "generate",
        "model": "models/gemini-2.5-flash",
        "display_name": None,
        "create_time": 1000.0,
        "job_seconds": 20.0,
        "pending_seconds": 4.0,
        "expire_after": 10_000.0,
        "forced_end": None,
        "input_file": "f1",
        "inline": False,
        "request_count": 400,
        "state": None,
        "end_time": None,
        "success_count": 0,
        "failed_count": 0,
        "output_file": None,
        "request_error_rate": 0.0,
        "shuffle": False,
        "undeletable_results": True,
        "results_delay": 0.0,
        "file_ttl": 10_000.0,
    }
    fields.update(changes)
    return BatchRow(**fields)
