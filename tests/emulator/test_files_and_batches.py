"""Files and Batches behaviour beyond the guide: chunked upload, wire shapes, limits, restarts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors

from reconciler.emulator import EmulatorHandle, running_emulator
from tests.emulator.conftest import make_client, text_request, upload_jsonl, wait_for_end

MODEL = "gemini-2.5-flash"


def test_large_upload_goes_in_8_mib_chunks_and_downloads_identically(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    client = make_client(emu)
    emu.configure(download_uploaded_files=True)  # the service serves only generated files
    data = os.urandom(17 * 1024 * 1024 + 123)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    emu.reset_calls()
    uploaded = client.files.upload(file=str(path), config={"mime_type": "application/octet-stream"})
    assert emu.calls()["files.upload_chunk"] == 3
    assert uploaded.size_bytes == len(data)
    assert uploaded.sha256_hash == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert client.files.download(file=uploaded.name) == data


def test_download_alias_path_accepts_key_in_query(emu: EmulatorHandle, tmp_path: Path) -> None:
    client = make_client(emu)
    source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    result = client.files.get(name=job.dest.file_name)
    assert result.download_uri.startswith(f"{emu.base_url}/download/v1beta/files/batch-")
    via_alias = httpx.get(f"{result.download_uri}&key=k")
    assert via_alias.status_code == 200 and json.loads(via_alias.content)["key"] == "a"
    assert client.files.download(file=result) == via_alias.content  # File object with downloadUri
    assert httpx.get(result.download_uri).status_code == 403  # no key at all


def test_files_list_pages_and_delete_removes(emu: EmulatorHandle, tmp_path: Path) -> None:
    client = make_client(emu)
    names = [
        upload_jsonl(client, tmp_path / f"f{i}.jsonl", [text_request("a", str(i))]).name
        for i in range(5)
    ]
    emu.reset_calls()
    assert [f.name for f in client.files.list(config={"page_size": 2})] == list(reversed(names))
    assert emu.calls()["files.list"] == 3
    client.files.delete(name=names[0])
    with pytest.raises(errors.ClientError) as caught:
        client.files.get(name=names[0])
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


def test_file_size_limit_and_storage_quota_refuse_uploads(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    client = make_client(emu)
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2000)
    emu.configure(max_file_bytes=1000)
    with pytest.raises(errors.ClientError) as too_big:
        client.files.upload(file=str(path))
    assert too_big.value.code == 400
    emu.configure(max_file_bytes=10_000, storage_quota_bytes=3000)
    client.files.upload(file=str(path))
    with pytest.raises(errors.ClientError) as over_quota:
        client.files.upload(file=str(path))
    assert over_quota.value.status == "RESOURCE_EXHAUSTED"


def test_operation_wire_shape_matches_the_service(emu: EmulatorHandle, tmp_path: Path) -> None:
    client = make_client(emu)
    source = upload_jsonl(
        client, tmp_path / "in.jsonl", [text_request("a", "b"), {"key": "bad", "request": {}}]
    )
    headers = {"x-goog-api-key": "k"}
    created = httpx.post(
        f"{emu.base_url}/v1beta/models/{MODEL}:batchGenerateContent",
        headers=headers,
        json={"batch": {"input_config": {"file_name": source.name}}},  # snake_case accepted
    ).json()
    meta = created["metadata"]
    assert created["name"] == meta["name"] and meta["state"] == "BATCH_STATE_PENDING"
    assert meta["@type"].endswith("GenerateContentBatch") and "displayName" not in meta
    assert meta["inputConfig"] == {"fileName": source.name}
    assert meta["batchStats"] == {"requestCount": "2", "pendingRequestCount": "2"}
    assert "done" not in created
    wait_for_end(client, created["name"])
    done = httpx.get(f"{emu.base_url}/v1/{created['name']}", headers=headers).json()
    assert done["done"] is True and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert done["metadata"]["batchStats"] == {
        "requestCount": "2",
        "successfulRequestCount": "1",
        "failedRequestCount": "1",
    }
    assert done["response"]["responsesFile"] == done["metadata"]["output"]["responsesFile"]
    assert done["response"]["@type"].endswith("GenerateContentBatchOutput")
    assert done["metadata"]["endTime"] >= done["metadata"]["createTime"]


def test_answers_depend_on_prompt_and_config_not_on_spelling(client: genai.Client) -> None:
    base = {"contents": [{"parts": [{"text": "same"}]}]}
    src = [
        base,
        {**base, "config": {"temperature": 0.1}},
        {"contents": [{"parts": [{"text": "other"}]}]},
        base,
    ]
    job = wait_for_end(client, client.batches.create(model=MODEL, src=src).name)
    texts = [r.response.text for r in job.dest.inlined_responses]
    assert texts[0] == texts[3] and len({texts[0], texts[1], texts[2]}) == 3
    usage = job.dest.inlined_responses[0].response.usage_metadata
    # As the service reports it: thinking tokens are outside candidates but in the total.
    thinking = usage.thoughts_token_count or 0
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + thinking
    )


def test_file_lines_accept_snake_and_camel_case_alike(client: genai.Client, tmp_path: Path) -> None:
    camel = {
        "key": "c",
        "request": {
            "contents": [{"parts": [{"text": "q"}]}],
            "generationConfig": {"maxOutputTokens": 5},
        },
    }
    snake = {
        "key": "s",
        "request": {
            "contents": [{"parts": [{"text": "q"}]}],
            "generation_config": {"max_output_tokens": 5},
        },
    }
    source = upload_jsonl(client, tmp_path / "in.jsonl", [camel, snake])
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    lines = [
        json.loads(line) for line in client.files.download(file=job.dest.file_name).splitlines()
    ]
    texts = [line["response"]["candidates"][0]["content"]["parts"][0]["text"] for line in lines]
    assert texts[0] == texts[1]


def test_cancel_of_finished_job_is_a_noop_and_delete_removes_it(client: genai.Client) -> None:
    job = wait_for_end(client, client.batches.create(model=MODEL, src=[{"contents": "x"}]).name)
    client.batches.cancel(name=job.name)
    assert client.batches.get(name=job.name).state.name == "JOB_STATE_SUCCEEDED"
    client.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as caught:
        client.batches.get(name=job.name)
    assert caught.value.code == 404


def test_create_from_unknown_file_is_not_found(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src="files/nosuchfile")
    assert caught.value.code == 404


def test_job_survives_restart_and_keeps_progressing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_emulator(data_dir, job_seconds=0.6) as first:
        client = make_client(first)
        source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
        name = client.batches.create(model=MODEL, src=source.name).name
        assert client.batches.get(name=name).state.name == "JOB_STATE_PENDING"
    with running_emulator(data_dir, job_seconds=5.0) as second:  # old jobs keep their duration
        client = make_client(second)
        done = wait_for_end(client, name, timeout=5)
        assert done.state.name == "JOB_STATE_SUCCEEDED"
        assert json.loads(client.files.download(file=done.dest.file_name))["key"] == "a"


def test_two_emulators_share_one_data_dir_at_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with (
        running_emulator(data_dir, job_seconds=0.3) as a,
        running_emulator(data_dir, job_seconds=0.3) as b,
    ):
        client_a, client_b = make_client(a), make_client(b)
        names = [
            client_a.batches.create(model=MODEL, src=[{"contents": f"p{i}"}]).name for i in range(5)
        ]
        finished = [wait_for_end(client_b if i % 2 else client_a, n) for i, n in enumerate(names)]
        assert {job.state.name for job in finished} == {"JOB_STATE_SUCCEEDED"}
        texts_a = [
            r.response.text for r in client_a.batches.get(name=names[0]).dest.inlined_responses
        ]
        texts_b = [
            r.response.text for r in client_b.batches.get(name=names[0]).dest.inlined_responses
        ]
        assert texts_a == texts_b


def test_job_reads_its_input_as_it_was_at_create(client: genai.Client, tmp_path: Path) -> None:
    source = upload_jsonl(
        client, tmp_path / "in.jsonl", [text_request("a", "b"), text_request("c", "d")]
    )
    name = client.batches.create(model=MODEL, src=source.name).name
    client.files.delete(name=source.name)  # a common clean-up right after create
    done = wait_for_end(client, name)
    keys = [
        json.loads(line)["key"]
        for line in client.files.download(file=done.dest.file_name).splitlines()
    ]
    assert keys == ["a", "c"]
