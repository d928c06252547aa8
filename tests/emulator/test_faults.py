"""Fault switches and service quirks, each observed through the real SDK."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from google.genai import errors, types

from reconciler.emulator import EmulatorHandle, running_emulator
from tests.emulator.conftest import make_client, text_request, upload_jsonl, wait_for_end

MODEL = "gemini-2.5-flash"
FAST_RETRY = types.HttpRetryOptions(attempts=12, initial_delay=0.01, max_delay=0.02, jitter=0.0)


def test_sdk_does_not_retry_a_429_by_default(emu: EmulatorHandle) -> None:
    client = make_client(emu)
    emu.configure(rate_429=1.0)
    with pytest.raises(errors.ClientError) as caught:
        client.batches.list()
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert emu.calls()["batches.list"] == 1


def test_retry_options_rescue_calls_through_injected_429s(emu: EmulatorHandle) -> None:
    emu.configure(rate_429=0.6, seed=7)
    client = make_client(emu, retry_options=FAST_RETRY)
    jobs = [client.batches.create(model=MODEL, src=[{"contents": "x"}]) for _ in range(3)]
    assert all(job.name for job in jobs)
    assert emu.calls()["batches.create_generate"] > 3


@pytest.mark.parametrize(
    ("setting", "code", "status"), [("rate_500", 500, "INTERNAL"), ("rate_503", 503, "UNAVAILABLE")]
)
def test_server_errors_surface_as_server_error(
    emu: EmulatorHandle, setting: str, code: int, status: str
) -> None:
    emu.configure(**{setting: 1.0})
    client = make_client(emu)
    with pytest.raises(errors.ServerError) as caught:
        client.files.list()
    assert (caught.value.code, caught.value.status) == (code, status)


def test_fault_sequence_is_reproducible_for_a_seed(emu: EmulatorHandle) -> None:
    def outcomes() -> list[int]:
        client, seen = make_client(emu), []
        for _ in range(12):
            try:
                client.files.list()
                seen.append(200)
            except errors.APIError as exc:
                seen.append(exc.code)
        return seen

    emu.configure(rate_429=0.3, rate_503=0.3, seed=42)
    first = outcomes()
    emu.configure(seed=0)
    emu.configure(seed=42)
    assert outcomes() == first
    assert {200, 429, 503} <= set(first)


def test_dropped_connection_closes_without_response(emu: EmulatorHandle) -> None:
    emu.configure(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{emu.base_url}/v1/files", headers={"x-goog-api-key": "k"})
    client = make_client(emu)
    with pytest.raises(Exception) as caught:
        client.batches.list()
    assert not isinstance(caught.value, errors.APIError)  # a transport error, not an HTTP answer


def test_sdk_retry_options_do_not_cover_dropped_connections(emu: EmulatorHandle) -> None:
    # google-genai 3.6.1 retries only httpx Timeout/ConnectError, not "server disconnected
    # without sending a response": callers must retry these themselves (and treat a create
    # as ambiguous, since the service may have acted before the connection died).
    emu.configure(drop_rate=1.0)
    client = make_client(emu, retry_options=FAST_RETRY)
    with pytest.raises(httpx.RemoteProtocolError):
        client.files.list()
    assert emu.calls()["files.list"] == 1


def test_latency_delays_every_call(emu: EmulatorHandle) -> None:
    client = make_client(emu)
    emu.configure(latency_seconds=0.25)
    started = time.monotonic()
    client.files.list()
    assert time.monotonic() - started >= 0.25


def test_request_error_rate_fails_some_requests_deterministically(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    client = make_client(emu)
    emu.configure(request_error_rate=0.5)
    source = upload_jsonl(
        client, tmp_path / "in.jsonl", [text_request(f"k{i}", f"prompt {i}") for i in range(40)]
    )
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    lines = [
        json.loads(line) for line in client.files.download(file=job.dest.file_name).splitlines()
    ]
    failed = [line["key"] for line in lines if "error" in line]
    assert 5 < len(failed) < 35
    assert {line["error"]["code"] for line in lines if "error" in line} == {13}
    again = client.files.download(file=job.dest.file_name)  # computed once, stored
    assert [json.loads(line).get("error") is not None for line in again.splitlines()] == [
        "error" in line for line in lines
    ]


def test_request_errors_follow_the_seed_and_creation_order_not_the_random_job_id(
    tmp_path: Path,
) -> None:
    requests = [text_request(f"k{i}", f"prompt {i}") for i in range(40)]

    def failed_keys_of_two_jobs(data_dir: Path) -> list[list[str]]:
        with running_emulator(data_dir, job_seconds=0.1, request_error_rate=0.5, seed=3) as emu:
            client = make_client(emu)
            runs = []
            for attempt in range(2):
                source = upload_jsonl(client, data_dir.parent / f"in{attempt}.jsonl", requests)
                name = client.batches.create(model=MODEL, src=source.name).name
                job = wait_for_end(client, name)
                lines = client.files.download(file=job.dest.file_name).splitlines()
                runs.append([json.loads(x)["key"] for x in lines if "error" in json.loads(x)])
            return runs

    first = failed_keys_of_two_jobs(tmp_path / "a" / "emulator")
    second = failed_keys_of_two_jobs(tmp_path / "b" / "emulator")
    assert first == second, "the same seed and the same calls must fail the same requests"
    assert first[0] != first[1], "the next job (a retry) draws its failures afresh"


def test_forced_failed_and_expired_jobs(emu: EmulatorHandle) -> None:
    client = make_client(emu)
    emu.configure(fail_next_jobs=1, expire_next_jobs=1)
    states = [
        wait_for_end(client, client.batches.create(model=MODEL, src=[{"contents": "x"}]).name)
        for _ in range(3)
    ]
    assert [job.state.name for job in states] == [
        "JOB_STATE_FAILED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_SUCCEEDED",
    ]
    assert states[0].dest is None
    assert emu.settings.fail_next_jobs == 0 and emu.settings.expire_next_jobs == 0


def test_jobs_running_past_scaled_48_hours_expire(emu: EmulatorHandle) -> None:
    client = make_client(emu)
    emu.configure(job_seconds=30.0, time_scale=48 * 3600 / 0.2)  # 48 h pass in 0.2 s
    job = wait_for_end(client, client.batches.create(model=MODEL, src=[{"contents": "x"}]).name)
    assert job.state.name == "JOB_STATE_EXPIRED"
    assert (job.end_time - job.create_time).total_seconds() == pytest.approx(0.2, abs=0.01)


def test_files_disappear_after_scaled_48_hours(emu: EmulatorHandle, tmp_path: Path) -> None:
    client = make_client(emu)
    emu.configure(time_scale=48 * 3600 / 0.2)
    uploaded = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    assert (uploaded.expiration_time - uploaded.create_time).total_seconds() == pytest.approx(
        0.2, abs=0.01
    )
    time.sleep(0.25)
    with pytest.raises(errors.ClientError) as caught:
        client.files.get(name=uploaded.name)
    assert caught.value.code == 404


def test_concurrent_job_cap_answers_429_on_create(emu: EmulatorHandle) -> None:
    client = make_client(emu)
    emu.configure(max_concurrent_jobs=2, job_seconds=30.0)
    first = client.batches.create(model=MODEL, src=[{"contents": "x"}])
    client.batches.create(model=MODEL, src=[{"contents": "x"}])
    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src=[{"contents": "x"}])
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    client.batches.cancel(name=first.name)
    assert client.batches.create(model=MODEL, src=[{"contents": "x"}]).name


def test_enqueued_token_quota_is_per_model_and_frees_when_a_job_ends(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    client = make_client(emu)
    source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b" * 380)])
    tokens = -(-client.files.get(name=source.name).size_bytes // 4)
    emu.configure(max_enqueued_tokens=tokens * 2, job_seconds=30.0)
    first = client.batches.create(model=MODEL, src=source.name)
    client.batches.create(model=MODEL, src=source.name)
    with pytest.raises(errors.ClientError) as caught:
        client.batches.create(model=MODEL, src=source.name)
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert "enqueued tokens" in str(caught.value.message)
    # Another model has its own quota.
    assert client.batches.create(model="gemini-2.5-pro", src=source.name).name
    client.batches.cancel(name=first.name)
    assert client.batches.create(model=MODEL, src=source.name).name


def test_results_file_is_not_downloadable_right_after_success(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    client = make_client(emu)
    emu.configure(results_delay_seconds=0.4)
    source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    assert job.state.name == "JOB_STATE_SUCCEEDED" and job.dest.file_name
    with pytest.raises(errors.ClientError) as caught:
        client.files.download(file=job.dest.file_name)
    assert caught.value.code == 404
    time.sleep(0.45)
    assert json.loads(client.files.download(file=job.dest.file_name))["key"] == "a"


def test_shuffled_inline_responses_lose_order_and_metadata(emu: EmulatorHandle) -> None:
    client = make_client(emu)
    emu.configure(shuffle_inline_responses=True)
    src = [
        types.InlinedRequest(contents=f"prompt {i}", metadata={"key": f"k{i}"}) for i in range(8)
    ]
    job = wait_for_end(client, client.batches.create(model=MODEL, src=src).name)
    responses = job.dest.inlined_responses
    assert all(r.metadata is None for r in responses)
    order = [int(r.response.text.split("prompt ")[1].split()[0]) for r in responses]
    assert sorted(order) == list(range(8)) and order != list(range(8))


def test_inline_responses_keep_order_and_metadata_by_default(client: object) -> None:
    from google import genai

    assert isinstance(client, genai.Client)
    src = [
        types.InlinedRequest(contents=f"prompt {i}", metadata={"key": f"k{i}"}) for i in range(5)
    ]
    job = wait_for_end(client, client.batches.create(model=MODEL, src=src).name)
    assert [r.metadata for r in job.dest.inlined_responses] == [{"key": f"k{i}"} for i in range(5)]


def test_undeletable_result_files_answer_400_on_delete(emu: EmulatorHandle, tmp_path: Path) -> None:
    client = make_client(emu)
    emu.configure(undeletable_result_files=True)
    source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    with pytest.raises(errors.ClientError) as caught:
        client.files.delete(name=job.dest.file_name)
    assert caught.value.status == "INVALID_ARGUMENT" and "40 characters" in caught.value.message
    client.files.delete(name=source.name)  # uploaded files still delete
    assert client.files.get(name=job.dest.file_name).source.name == "GENERATED"


def test_lenient_result_files_have_ids_within_forty_characters_and_delete(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    client = make_client(emu)
    emu.configure(undeletable_result_files=False)
    source = upload_jsonl(client, tmp_path / "in.jsonl", [text_request("a", "b")])
    job = wait_for_end(client, client.batches.create(model=MODEL, src=source.name).name)
    file_id = job.dest.file_name.removeprefix("files/")
    assert file_id.startswith("batch-") and len(file_id) == 40
    assert client.files.download(file=job.dest.file_name)
    client.files.delete(name=job.dest.file_name)
    with pytest.raises(errors.ClientError):
        client.files.get(name=job.dest.file_name)


def test_admin_endpoint_reads_and_changes_settings_and_counts(emu: EmulatorHandle) -> None:
    admin = f"{emu.base_url}/_emulator"
    assert httpx.get(f"{admin}/settings").json()["rate_503"] == 0.0
    changed = httpx.patch(
        f"{admin}/settings", json={"rate_503": 1.0, "shuffle_inline_responses": True}
    ).json()
    assert changed["rate_503"] == 1.0 and emu.settings.shuffle_inline_responses
    client = make_client(emu)
    with pytest.raises(errors.ServerError):
        client.files.list()
    assert httpx.post(f"{admin}/settings", json={"rate_503": 0}).status_code == 200
    assert httpx.get(f"{admin}/calls").json() == {"files.list": 1}
    assert httpx.post(f"{admin}/calls/reset", json={}).json() == {}
    assert httpx.get(f"{admin}/calls").json() == {}
    bad = httpx.post(f"{admin}/settings", json={"no_such_setting": 1})
    assert bad.status_code == 400 and "unknown setting" in bad.json()["error"]["message"]
    assert httpx.post(f"{admin}/settings", json={"rate_429": 2}).status_code == 400
    with pytest.raises(ValueError):
        emu.configure(no_such_setting=1)


def test_api_key_flag_accepts_only_that_key(tmp_path: Path) -> None:
    with running_emulator(tmp_path, api_key="secret", job_seconds=0.1) as emu:
        wrong = make_client(emu)
        with pytest.raises(errors.ClientError) as caught:
            wrong.files.list()
        assert caught.value.code == 400
        from google import genai

        client = genai.Client(api_key="secret", http_options={"base_url": emu.base_url})
        source = upload_jsonl(
            client, tmp_path / "in.jsonl", [text_request("a", "b")]
        )  # chunks carry no key
        assert client.files.get(name=source.name).size_bytes == source.size_bytes
        missing = httpx.get(f"{emu.base_url}/v1/files")
        assert (
            missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
        )
