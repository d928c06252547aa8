"""Raw HTTP the SDK never sends, answered as Google answers it: a 400 in the service's error
shape (never a 500 with a traceback), and never more lenient than the service."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from google import genai

from reconciler.emulator import EmulatorHandle
from tests.emulator.conftest import wait_for_end

MODEL = "gemini-2.5-flash"
KEY = {"x-goog-api-key": "k"}
CREATE = f"/v1beta/models/{MODEL}:batchGenerateContent"


def _create(emu: EmulatorHandle, content: bytes) -> httpx.Response:
    headers = {**KEY, "Content-Type": "application/json"}
    return httpx.post(emu.base_url + CREATE, content=content, headers=headers, timeout=60)


def _invalid_argument(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    return str(error["message"])


@pytest.mark.hostile_input
@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"batch": {"displayName": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}",
        b'{"batch": ' + b"9" * 5_000 + b"}",
        b"\xff\xfe{}",
    ],
    ids=["deep-array", "deep-field", "huge-integer", "not-utf8"],
)
def test_a_body_the_json_parser_cannot_take_is_a_400_not_a_crash(
    emu: EmulatorHandle, content: bytes
) -> None:
    assert _invalid_argument(_create(emu, content)).startswith("Invalid JSON payload received.")
    # The server is still answering (a crash would have reset the connection).
    assert httpx.get(f"{emu.base_url}/v1beta/batches", headers=KEY).status_code == 200


def test_a_create_body_over_the_services_20_mb_is_refused(emu: EmulatorHandle) -> None:
    text = "x" * (21 * 1024 * 1024)
    body = (
        b'{"batch": {"inputConfig": {"requests": {"requests": [{"request": {"contents": '
        b'[{"parts": [{"text": "' + text.encode() + b'"}]}]}}]}}}}'
    )
    message = _invalid_argument(_create(emu, body))
    assert message == "Request payload size exceeds the limit: 20971520 bytes."


@pytest.mark.parametrize("route", ["files", "batches", "models"])
def test_a_negative_page_size_is_refused_and_zero_means_the_default(
    emu: EmulatorHandle, route: str
) -> None:
    url = f"{emu.base_url}/v1beta/{route}"
    message = _invalid_argument(httpx.get(url, params={"pageSize": "-1"}, headers=KEY))
    assert "pageSize" in message
    assert httpx.get(url, params={"pageSize": "0"}, headers=KEY).status_code == 200


@pytest.mark.hostile_input
def test_an_input_line_too_deep_or_too_long_to_parse_is_a_per_request_error(
    emu: EmulatorHandle, client: genai.Client, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n" + b"9" * 5_000 + b"\n")
    upload = client.files.upload(file=str(path), config={"mime_type": "jsonl"})
    assert upload.name is not None
    job = client.batches.create(model=MODEL, src=upload.name)
    assert job.name is not None
    ended = wait_for_end(client, job.name)
    assert ended.state is not None and ended.state.name == "JOB_STATE_SUCCEEDED"
    assert ended.dest is not None and ended.dest.file_name is not None
    lines = client.files.download(file=ended.dest.file_name).decode().splitlines()
    assert len(lines) == 2 and all('"error"' in line for line in lines)


@pytest.mark.parametrize("size", ["-5", "abc", "1.5"])
def test_an_upload_declaring_an_impossible_size_is_refused(emu: EmulatorHandle, size: str) -> None:
    headers = {
        **KEY,
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": size,
        "X-Goog-Upload-Header-Content-Type": "jsonl",
    }
    started = httpx.post(
        f"{emu.base_url}/upload/v1beta/files", json={"file": {}}, headers=headers, timeout=30
    )
    assert "Invalid upload size" in _invalid_argument(started)
    assert "x-goog-upload-url" not in started.headers
