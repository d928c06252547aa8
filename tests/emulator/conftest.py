"""Fixtures for the emulator suite: an in-process emulator and real google-genai clients on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google import genai
from google.genai import types

from reconciler.emulator import EmulatorHandle, running_emulator

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
