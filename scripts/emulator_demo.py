"""Offline demo: the seed guide's file job and inline job, through the real SDK, on the emulator.

Starts an in-process emulator in a temporary directory (no network, no API key needed) and runs
the guide's Method 1 (JSONL file → batch → poll → download results) and Method 2 (inline requests
→ poll → `response.text`), printing what the guide prints.

    .venv/bin/python scripts/emulator_demo.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from google import genai
from google.genai import types

from reconciler.emulator import running_emulator

MODEL_ID = "gemini-3-flash-preview"
TERMINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")


def wait(client: genai.Client, name: str) -> types.BatchJob:
    while True:
        job = client.batches.get(name=name)
        state = job.state.name if job.state else "UNKNOWN"
        if state in TERMINAL:
            print(f"Job finished with state: {state}")
            return job
        print(f"Job not finished. Current state: {state}. Waiting 0.5 seconds...")
        time.sleep(0.5)


def file_job(client: genai.Client, workdir: Path) -> None:
    print("== Method 1: a job from a JSONL file ==")
    requests_data = [
        {
            "key": "request_1",
            "request": {"contents": [{"parts": [{"text": "Explain how AI works in a few words"}]}]},
        },
        {
            "key": "request_2",
            "request": {
                "contents": [
                    {"parts": [{"text": "Explain how quantum computing works in a few words"}]}
                ]
            },
        },
    ]
    path = workdir / "batch_requests.json"
    path.write_text("".join(json.dumps(req) + "\n" for req in requests_data))
    uploaded = client.files.upload(
        file=str(path), config=types.UploadFileConfig(display_name="batch-input-file")
    )
    print(f"Uploaded file: {uploaded.name}")
    job = client.batches.create(
        model=MODEL_ID, src=uploaded.name or "", config={"display_name": "my-batch-job-from-file"}
    )
    print(f"Created batch job from file: {job.name}")
    job = wait(client, job.name or "")
    if job.dest and job.dest.file_name:
        print(f"Results are in file: {job.dest.file_name}")
        for line in client.files.download(file=job.dest.file_name).decode().splitlines():
            print(json.dumps(json.loads(line), indent=2))
            print("-" * 20)


def inline_job(client: genai.Client) -> None:
    print("== Method 2: a job with inline requests ==")
    inline_requests: list[types.InlinedRequestOrDict] = [
        {"contents": [{"parts": [{"text": "Write a short poem about a cloud."}]}]},
        {"contents": [{"parts": [{"text": "Write a short poem about a cat."}]}]},
    ]
    job = client.batches.create(
        model=MODEL_ID, src=inline_requests, config={"display_name": "my-batch-job-inline-example"}
    )
    print(f"Created inline batch job: {job.name}")
    job = wait(client, job.name or "")
    for i, inline_response in enumerate((job.dest.inlined_responses if job.dest else None) or []):
        print(f"\n--- Response {i + 1} ---")
        if inline_response.response:
            print(inline_response.response.text)
        elif inline_response.error:
            print(f"Error: {inline_response.error}")


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp,
        running_emulator(Path(tmp) / "emulator", job_seconds=1.5) as emu,
    ):
        print(f"Emulator at {emu.base_url} (data in {emu.data_dir})")
        client = genai.Client(api_key="demo", http_options={"base_url": emu.base_url})
        file_job(client, Path(tmp))
        inline_job(client)
        print(f"\nCalls served: {emu.calls()}")


if __name__ == "__main__":
    main()
