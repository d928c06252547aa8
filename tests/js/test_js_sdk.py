"""The official JavaScript SDK (`@google/genai`, pinned in tests/js/package.json) against the
embedded emulator over HTTP: uploads, files get/list/delete, batch creates from a file, inline
requests and embeddings, get, paged list, cancel, delete, downloads, and the errors it raises.

`sdk_calls.mjs` makes the calls and prints each result; the assertions are here. Node and the
SDK come from the project's own setup (`scripts/setup.sh` runs `npm ci --prefix tests/js`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import running_emulator

HERE = Path(__file__).parent
SCRIPT = HERE / "sdk_calls.mjs"


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JavaScript SDK suite needs it")
    if not (HERE / "node_modules" / "@google" / "genai").is_dir():
        pytest.fail("@google/genai is not installed: run `make setup` (npm ci --prefix tests/js)")
    root = tmp_path_factory.mktemp("js-sdk")
    scratch = root / "scratch"
    scratch.mkdir()
    with running_emulator(root / "emulator", job_seconds=0.3) as emu:
        done = subprocess.run(
            [node, str(SCRIPT), emu.base_url, str(scratch)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    yield json.loads(done.stdout)


def _no_error(result: Any) -> Any:
    assert not (isinstance(result, dict) and "error" in result), result
    return result


def test_uploads_from_a_path_and_a_blob_are_files_the_sdk_reads(calls: dict[str, Any]) -> None:
    upload = _no_error(calls["upload"])
    assert upload["name"].startswith("files/")
    assert upload["displayName"] == "js-input"
    assert upload["mimeType"] == "jsonl"
    assert upload["state"] == "ACTIVE"
    assert upload["source"] == "UPLOADED"
    written = "".join(
        json.dumps(
            {"key": key, "request": {"contents": [{"parts": [{"text": key}]}]}},
            separators=(",", ":"),
        )
        + "\n"
        for key in ("alpha", "beta")
    )
    assert upload["sizeBytes"] == str(len(written))
    blob = _no_error(calls["upload_blob"])
    assert blob["displayName"] == "js-blob"
    assert blob["mimeType"] == "application/json"
    assert blob["sizeBytes"] == "12"
    assert _no_error(calls["files_get"]) == upload


def test_files_list_pages_through_every_file(calls: dict[str, Any]) -> None:
    listed = _no_error(calls["files_list"])
    uploaded = [calls[step]["name"] for step in ("upload_embed", "upload_blob", "upload")]
    assert listed["names"] == uploaded  # newest first
    assert listed["pages"] == 2


def test_file_inline_and_embedding_jobs_succeed_with_their_outputs(calls: dict[str, Any]) -> None:
    for step in ("create_file", "create_inline", "create_embed_inline", "create_embed_file"):
        created = _no_error(calls[step])
        assert created["name"].startswith("batches/")
        assert created["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")
    assert calls["create_file"]["displayName"] == "js-file-job"
    assert calls["create_inline"]["model"] == "models/gemini-2.5-flash"

    file_job = _no_error(calls["file_job"])
    assert file_job["state"] == "JOB_STATE_SUCCEEDED"
    assert file_job["dest"]["fileName"] == "files/batch-" + file_job["name"].removeprefix(
        "batches/"
    )
    lines = [json.loads(line) for line in calls["download"].splitlines()]
    assert [line["key"] for line in lines] == ["alpha", "beta"]
    assert all(line["response"]["candidates"][0]["content"]["parts"] for line in lines)

    inline = _no_error(calls["inline_job"])["dest"]["inlinedResponses"]
    assert [item["metadata"]["key"] for item in inline] == ["k1", "k2"]
    assert all(item["response"]["candidates"] for item in inline)

    embedded = _no_error(calls["embed_inline_job"])["dest"]["inlinedEmbedContentResponses"]
    assert [len(item["response"]["embedding"]["values"]) for item in embedded] == [3, 3]
    assert _no_error(calls["embed_file_job"])["state"] == "JOB_STATE_SUCCEEDED"
    (embed_line,) = [json.loads(line) for line in calls["download_embed"].splitlines()]
    assert embed_line["key"] == "e1"
    assert embed_line["response"]["embedding"]["values"]


def test_batches_list_pages_through_every_job(calls: dict[str, Any]) -> None:
    listed = _no_error(calls["batches_list"])
    created = [
        calls[step]["name"]
        for step in (
            "create_to_cancel",
            "create_embed_file",
            "create_embed_inline",
            "create_inline",
            "create_file",
        )
    ]
    assert listed["names"] == created  # newest first
    assert listed["pages"] == 3


def test_cancel_ends_the_job_and_delete_removes_it(calls: dict[str, Any]) -> None:
    assert calls["cancel"] == "JOB_STATE_CANCELLED"
    _no_error(calls["batches_delete"])
    gone = calls["batches_get_deleted"]["error"]
    assert (gone["name"], gone["status"]) == ("ApiError", 404)
    assert json.loads(gone["message"])["error"]["status"] == "NOT_FOUND"


def test_errors_reach_the_sdk_as_api_errors_in_the_service_shape(calls: dict[str, Any]) -> None:
    unknown = calls["batches_get_unknown_model"]["error"]
    assert unknown["status"] == 404
    body = json.loads(unknown["message"])["error"]
    assert body["status"] == "NOT_FOUND"
    assert "is not found for API version v1beta" in body["message"]
    _no_error(calls["files_delete"])
    assert calls["files_get_deleted"]["error"]["status"] == 404
