"""gs:// outputs: results go to a bucket (a real GCS emulator on loopback), not the repository."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request

BUCKET = "team-results"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A gcp-storage-emulator server with one bucket; yields its STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    host = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    try:
        yield host
    finally:
        server.stop()


def _blob_text(host: str, name: str) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return client.bucket(BUCKET).blob(name).download_as_text()


def test_apply_writes_results_to_a_gcs_bucket(
    project: Project, emulator: EmulatorHandle, gcs: str
) -> None:
    project.write(
        "data/eval.jsonl",
        jsonl([{"key": f"k{i}", "request": text_request(f"p{i}")} for i in range(3)]),
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", f"gs://{BUCKET}/evals/eval.jsonl"))
    project.write("data/images.jsonl", jsonl([{"key": "img", "request": text_request("A lake")}]))
    project.manifest(
        "images",
        file_job_spec(
            "data/images.jsonl", f"gs://{BUCKET}/images/", model="gemini-2.5-flash-image"
        ),
    )
    project.commit()

    applied = project.run("apply", "--auto-approve", "--wait", env={"STORAGE_EMULATOR_HOST": gcs})

    assert applied.returncode == 0, applied.stderr
    lines = [json.loads(line) for line in _blob_text(gcs, "evals/eval.jsonl").splitlines()]
    assert [line["key"] for line in lines] == ["k0", "k1", "k2"]
    index = [json.loads(line) for line in _blob_text(gcs, "images/results.jsonl").splitlines()]
    image = next(
        p["file"]["path"]
        for p in index[0]["response"]["candidates"][0]["content"]["parts"]
        if "file" in p
    )
    assert image.endswith(".png")
    state = project.state()["resources"]
    assert state["eval"]["results"]["location"] == f"gs://{BUCKET}/evals/eval.jsonl"
    assert not (project.root / "results").exists()

    printed = project.run("results", "eval", "--print", env={"STORAGE_EMULATOR_HOST": gcs})
    assert printed.returncode == 0, printed.stderr
    assert len(printed.stdout.splitlines()) == 3
