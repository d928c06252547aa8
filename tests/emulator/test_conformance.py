"""The emulator is as strict as the service: each test pins a row of docs/emulator-conformance.md."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors

from reconciler.emulator import EmulatorHandle
from tests.emulator.conftest import text_request, upload_jsonl, wait_for_end

pytestmark = pytest.mark.filterwarnings("ignore:batches.create_embeddings")

MODEL = "gemini-2.5-flash"
KEY = {"x-goog-api-key": "k"}


def _post(emu: EmulatorHandle, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{emu.base_url}/v1beta/{path}", json=body, headers=KEY, **kwargs)


def _violations(response: httpx.Response) -> list[dict[str, str]]:
    error = response.json()["error"]
    (detail,) = error["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    return list(detail["fieldViolations"])


def _inline(text: str) -> dict[str, Any]:
    return {"request": {"contents": [{"parts": [{"text": text}]}]}, "metadata": {"key": text}}


def test_unknown_field_is_named_in_a_bad_request_violation(emu: EmulatorHandle) -> None:
    body = {"batch": {"inputConfig": {"requests": {"requests": [_inline("a")]}}, "bogusField": 1}}
    response = _post(emu, f"models/{MODEL}:batchGenerateContent", body)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    (violation,) = _violations(response)
    assert violation["field"] == "batch"
    assert 'Unknown name "bogusField"' in violation["description"]
    emu.configure(accept_unknown_fields=True)
    assert _post(emu, f"models/{MODEL}:batchGenerateContent", body).status_code == 200


def test_unknown_field_inside_an_inline_request_is_refused(emu: EmulatorHandle) -> None:
    item = _inline("a")
    item["request"]["generation_cfg"] = {}
    body = {"batch": {"inputConfig": {"requests": {"requests": [item]}}}}
    response = _post(emu, f"models/{MODEL}:batchGenerateContent", body)
    (violation,) = _violations(response)
    assert violation["field"] == "batch.input_config.requests.requests[0].request"


def test_unknown_model_and_wrong_method_answer_404_as_the_service(
    emu: EmulatorHandle, client: genai.Client
) -> None:
    src = [{"contents": [{"parts": [{"text": "x"}]}]}]
    with pytest.raises(errors.ClientError) as unknown:
        client.batches.create(model="models/no-such-model", src=src)
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    assert "models/no-such-model is not found for API version v1" in str(unknown.value.message)
    with pytest.raises(errors.ClientError) as embedding:
        client.batches.create(model="gemini-embedding-001", src=src)
    assert "not supported for batchGenerateContent" in str(embedding.value.message)
    with pytest.raises(errors.ClientError) as generation:
        client.batches.create_embeddings(model=MODEL, src={"inlined_requests": {"contents": ["a"]}})
    assert "not supported for asyncBatchEmbedContent" in str(generation.value.message)
    emu.configure(accept_unknown_models=True)
    assert client.batches.create(model="models/no-such-model", src=src).name


def test_models_get_and_list_come_from_the_overridable_catalogue(
    emu: EmulatorHandle, client: genai.Client
) -> None:
    model = client.models.get(model=MODEL)
    assert model.name == f"models/{MODEL}"
    assert "batchGenerateContent" in (model.supported_actions or [])
    assert model.input_token_limit and model.output_token_limit
    embed = client.models.get(model="gemini-embedding-001")
    assert "asyncBatchEmbedContent" in (embed.supported_actions or [])
    names = [m.name for m in client.models.list(config={"page_size": 3})]
    assert len(names) == len(emu.catalogue.all()) and f"models/{MODEL}" in names
    with pytest.raises(errors.ClientError) as missing:
        client.models.get(model="no-such-model")
    assert missing.value.code == 404
    added = httpx.post(
        f"{emu.base_url}/_emulator/models",
        json={
            "models": [
                {"name": "models/my-model", "supportedGenerationMethods": ["batchGenerateContent"]}
            ]
        },
    )
    assert added.status_code == 200
    assert client.models.get(model="my-model").supported_actions == ["batchGenerateContent"]


def test_bad_mime_type_is_refused_on_upload(
    emu: EmulatorHandle, client: genai.Client, tmp_path: Path
) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    with pytest.raises(errors.APIError, match="Unsupported MIME"):
        client.files.upload(file=str(path), config={"mime_type": "bad/mime_type"})
    assert client.files.upload(file=str(path), config={"mime_type": "jsonl"}).name
    emu.configure(accept_any_mime_type=True)
    assert client.files.upload(file=str(path), config={"mime_type": "bad/mime_type"}).name


def test_uploaded_files_cannot_be_downloaded_and_uris_have_the_real_form(
    emu: EmulatorHandle, client: genai.Client, tmp_path: Path
) -> None:
    uploaded = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    assert uploaded.uri == f"https://generativelanguage.googleapis.com/v1beta/{uploaded.name}"
    assert client.files.get(name=uploaded.uri).name == uploaded.name  # the SDK parses it
    with pytest.raises(errors.ClientError) as refused:
        client.files.download(file=uploaded.name)
    assert refused.value.code == 400
    emu.configure(download_uploaded_files=True)
    assert client.files.download(file=uploaded.name)


def test_long_result_ids_cannot_be_deleted_by_default(
    emu: EmulatorHandle, client: genai.Client, tmp_path: Path
) -> None:
    source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    assert job.dest is not None and job.dest.file_name is not None
    with pytest.raises(errors.ClientError, match="cannot be more than 40 characters"):
        client.files.delete(name=job.dest.file_name)
    client.files.delete(name=source.name)  # a 12-character id goes
    emu.configure(undeletable_result_files=False)
    job2 = wait_for_end(
        client, client.batches.create(model=MODEL, src=[_inline("x")["request"]]).name
    )
    assert job2.name


def test_media_files_are_processing_then_active(
    emu: EmulatorHandle, client: genai.Client, tmp_path: Path
) -> None:
    emu.configure(media_processing_seconds=0.3)
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 64)
    video = client.files.upload(file=str(path), config={"mime_type": "video/mp4"})
    assert video.state is not None and video.state.name == "PROCESSING"
    time.sleep(0.35)
    assert client.files.get(name=video.name).state.name == "ACTIVE"


def test_every_unsuccessful_end_carries_operation_error(
    emu: EmulatorHandle, client: genai.Client
) -> None:
    emu.configure(fail_next_jobs=1, expire_next_jobs=1)
    src = [{"contents": [{"parts": [{"text": "x"}]}]}]
    names = [client.batches.create(model=MODEL, src=src).name for _ in range(2)]
    emu.configure(job_seconds=60)
    names.append(client.batches.create(model=MODEL, src=src).name)
    assert names[2] is not None
    client.batches.cancel(name=names[2])
    codes = []
    for name in names:
        assert name is not None
        wait_for_end(client, name)
        body = httpx.get(f"{emu.base_url}/v1beta/{name}", headers=KEY).json()
        assert body["done"] is True and "response" not in body
        codes.append(body["error"]["code"])
    assert codes == [13, 4, 1]  # FAILED INTERNAL, EXPIRED DEADLINE_EXCEEDED, CANCELLED


def test_injected_429_carries_retry_info_and_quota_failure(emu: EmulatorHandle) -> None:
    emu.configure(rate_429=1.0, retry_delay_seconds=7)
    response = httpx.get(f"{emu.base_url}/v1beta/batches", headers=KEY)
    assert response.status_code == 429
    details = {d["@type"].rsplit(".", 1)[1]: d for d in response.json()["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "7s"
    assert details["QuotaFailure"]["violations"]
    assert details["Help"]["links"]


def test_concurrent_job_cap_is_a_quota_failure(emu: EmulatorHandle) -> None:
    emu.configure(max_concurrent_jobs=0)
    body = {"batch": {"inputConfig": {"requests": {"requests": [_inline("a")]}}}}
    response = _post(emu, f"models/{MODEL}:batchGenerateContent", body)
    assert response.status_code == 429
    types = [d["@type"].rsplit(".", 1)[1] for d in response.json()["error"]["details"]]
    assert "QuotaFailure" in types and "RetryInfo" in types


def test_enqueued_token_quota_is_a_quota_failure_naming_its_limit(emu: EmulatorHandle) -> None:
    emu.configure(max_enqueued_tokens=5)
    body = {"batch": {"inputConfig": {"requests": {"requests": [_inline("a" * 100)]}}}}
    response = _post(emu, f"models/{MODEL}:batchGenerateContent", body)
    assert response.status_code == 429
    details = {d["@type"].rsplit(".", 1)[1]: d for d in response.json()["error"]["details"]}
    (violation,) = details["QuotaFailure"]["violations"]
    assert violation["quotaId"] == "batch_enqueued_tokens_per_model"
    assert violation["quotaValue"] == "5"


def test_wrong_http_method_is_405_in_the_error_shape(emu: EmulatorHandle) -> None:
    response = httpx.put(f"{emu.base_url}/v1beta/batches", headers=KEY)
    assert response.status_code == 405
    assert response.json()["error"]["status"] == "UNIMPLEMENTED"


def test_priority_is_stored_echoed_and_updated(emu: EmulatorHandle) -> None:
    emu.configure(job_seconds=60)
    body = {"batch": {"inputConfig": {"requests": {"requests": [_inline("a")]}}, "priority": 5}}
    created = _post(emu, f"models/{MODEL}:batchGenerateContent", body).json()
    assert created["metadata"]["priority"] == "5"
    name = created["name"]
    url = f"{emu.base_url}/v1beta/{name}:updateGenerateContentBatch?updateMask=priority"
    updated = httpx.patch(url, json={"priority": "-3"}, headers=KEY)
    assert updated.status_code == 200 and updated.json()["priority"] == "-3"
    got = httpx.get(f"{emu.base_url}/v1beta/{name}", headers=KEY).json()
    assert got["metadata"]["priority"] == "-3"
    wrong = httpx.patch(
        f"{emu.base_url}/v1beta/{name}:updateGenerateContentBatch?updateMask=model",
        json={"model": "x"},
        headers=KEY,
    )
    assert wrong.status_code == 400
    other = f"{emu.base_url}/v1beta/{name}:updateEmbedContentBatch?updateMask=priority"
    assert httpx.patch(other, json={"priority": 1}, headers=KEY).status_code == 400


def test_v1alpha_is_served(emu: EmulatorHandle) -> None:
    client = genai.Client(
        api_key="k", http_options={"base_url": emu.base_url, "api_version": "v1alpha"}
    )
    job = client.batches.create_embeddings(
        model="gemini-embedding-001", src={"inlined_requests": {"contents": ["a", "b"]}}
    )
    assert job.name is not None
    done = wait_for_end(client, job.name)
    assert done.state is not None and done.state.name == "JOB_STATE_SUCCEEDED"


def test_files_register_makes_registered_files(emu: EmulatorHandle) -> None:
    body = {"uris": ["gs://bucket/a.jsonl", "gs://bucket/img.png"]}
    refused = _post(emu, "files:register", body)
    assert refused.status_code == 401
    headers = {**KEY, "authorization": "Bearer token"}
    response = httpx.post(f"{emu.base_url}/v1beta/files:register", json=body, headers=headers)
    files = response.json()["files"]
    assert [f["source"] for f in files] == ["REGISTERED", "REGISTERED"]
    assert files[1]["mimeType"] == "image/png"
    bad = httpx.post(
        f"{emu.base_url}/v1beta/files:register", json={"uris": ["http://x"]}, headers=headers
    )
    assert bad.status_code == 400 and _violations(bad)[0]["field"] == "uris[0]"


def test_multipart_upload_makes_one_file(emu: EmulatorHandle) -> None:
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n"
        '{"file": {"displayName": "mp"}}\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    response = httpx.post(
        f"{emu.base_url}/upload/v1beta/files?uploadType=multipart",
        content=body,
        headers={**KEY, "content-type": f"multipart/related; boundary={boundary}"},
    )
    assert response.status_code == 200
    file = response.json()["file"]
    assert (file["displayName"], file["mimeType"], file["sizeBytes"]) == ("mp", "text/plain", "5")


def test_admin_creates_resources_with_chosen_names(
    emu: EmulatorHandle, client: genai.Client
) -> None:
    body = {
        "files": [
            {
                "name": "files/recorded1",
                "content": '{"key":"a","request":{"contents":[{"parts":[{"text":"x"}]}]}}\n',
                "mimeType": "jsonl",
            }
        ],
        "batches": [
            {
                "name": "batches/recorded-batch",
                "model": f"models/{MODEL}",
                "inputConfig": {"fileName": "files/recorded1"},
            }
        ],
    }
    response = httpx.post(f"{emu.base_url}/_emulator/resources", json=body)
    assert response.status_code == 200
    assert client.files.get(name="files/recorded1").size_bytes
    done = wait_for_end(client, "batches/recorded-batch")
    assert done.dest is not None and done.dest.file_name == "files/batch-recorded-batch"
    again = httpx.post(f"{emu.base_url}/_emulator/resources", json=body)
    assert again.status_code == 409


def test_response_header_names_are_spelled_as_the_service_spells_them(emu: EmulatorHandle) -> None:
    # aiohttp clients (google-genai's aio with its `aiohttp` extra) keep the spelling in a dict.
    listed = httpx.get(f"{emu.base_url}/v1beta/files", headers=KEY)
    started = httpx.post(
        f"{emu.base_url}/upload/v1beta/files",
        json={"file": {"displayName": "x"}},
        headers={
            **KEY,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "1",
            "X-Goog-Upload-Header-Content-Type": "text/plain",
        },
    )
    assert started.status_code == 200, started.text
    listed_names = {name for name, _ in listed.headers.raw}
    started_names = {name for name, _ in started.headers.raw}
    assert b"Content-Type" in listed_names and b"content-type" not in listed_names
    assert b"X-Goog-Upload-URL" in started_names
