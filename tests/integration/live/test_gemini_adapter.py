"""The adapter against the in-process emulator through the real SDK (DESIGN §8, STYLE §3).

Faults come from the emulator's switches, call counts from `emu.calls()`: what is asserted is
what went over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import warnings
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

from reconciler.clock import SystemClock
from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.errors import PermanentServiceError, ServiceError, TransientServiceError
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, GeminiAdapter, connect
from reconciler.live.settings import Task
from reconciler.live.snapshot import LiveJob
from reconciler.live.tags import IdentityTag, parse_tag
from reconciler.state.document import JobState

T = TypeVar("T")

API_KEY = "AIzaSy-integration-secret-0123456789"
"""A recognisable key: tests assert it never shows up in errors or logs."""

FAST = AdapterSettings(
    retry_attempts=5,
    retry_initial_delay=0.01,
    retry_max_delay=0.05,
    retry_jitter=0.01,
    request_timeout=10.0,
    transfer_attempts=3,
)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator", job_seconds=0.2) as emu:
        yield emu


def run(
    emu: EmulatorHandle,
    body: Callable[[GeminiAdapter], Coroutine[Any, Any, T]],
    *,
    settings: AdapterSettings = FAST,
    api_key: str = API_KEY,
) -> T:
    """Run `body` with an adapter on `emu`, closing the adapter afterwards."""

    async def main() -> T:
        endpoint = Endpoint(EndpointKind.URL, emu.base_url, api_key, "v1beta")
        adapter = connect(endpoint, clock=SystemClock(), settings=settings)
        try:
            return await body(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


async def wait_terminal(adapter: GeminiAdapter, name: str, timeout: float = 15.0) -> LiveJob:
    """Poll get_job until the job ends (emulated jobs take `job_seconds`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        job = await adapter.get_job(name)
        assert job is not None, name
        if job.state.is_terminal:
            return job
        if loop.time() > deadline:
            raise AssertionError(f"{name} still {job.state} after {timeout}s")
        await asyncio.sleep(0.05)


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def generate_lines(count: int, prefix: str = "req") -> list[dict[str, Any]]:
    return [
        {
            "key": f"{prefix}-{i}",
            "request": {"contents": [{"role": "user", "parts": [{"text": f"Tell me about {i}"}]}]},
        }
        for i in range(count)
    ]


def embed_lines(count: int, dims: int = 4) -> list[dict[str, Any]]:
    return [
        {
            "key": f"emb-{i}",
            "request": {"content": {"parts": [{"text": f"doc {i}"}]}, "outputDimensionality": dims},
        }
        for i in range(count)
    ]


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("jobs", "page_size"), [(7, 3), (6, 3), (2, 100)])
def test_snapshot_lists_every_job_with_one_list_call_per_page(
    emulator: EmulatorHandle, jobs: int, page_size: int
) -> None:
    tuned = AdapterSettings(
        retry_attempts=FAST.retry_attempts,
        retry_initial_delay=FAST.retry_initial_delay,
        retry_max_delay=FAST.retry_max_delay,
        retry_jitter=FAST.retry_jitter,
        request_timeout=FAST.request_timeout,
        page_size=page_size,
    )

    async def body(adapter: GeminiAdapter) -> tuple[list[str], Any]:
        created = [
            await adapter.create_job(
                model="gemini-2.5-flash",
                task="generate",
                display_name=f"job {i}",
                inline_requests=generate_lines(1),
            )
            for i in range(jobs)
        ]
        emulator.reset_calls()
        live = await adapter.snapshot(include_files=False)
        return [j.name for j in created], live

    names, live = run(emulator, body, settings=tuned)
    assert sorted(live.jobs) == sorted(names)
    assert not live.files_listed and live.files == {}
    calls = emulator.calls()
    assert calls.get("batches.list") == math.ceil(jobs / page_size)
    assert "batches.get" not in calls


def test_snapshot_with_files_lists_files_too(emulator: EmulatorHandle, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate_lines(2))

    async def body(adapter: GeminiAdapter) -> Any:
        uploaded = [
            await adapter.upload_file(source, display_name=f"input {i}", mime_type="jsonl")
            for i in range(3)
        ]
        emulator.reset_calls()
        return uploaded, await adapter.snapshot(include_files=True)

    uploaded, live = run(emulator, body)
    assert live.files_listed
    assert sorted(live.files) == sorted(f.name for f in uploaded)
    file = live.files[uploaded[0].name]
    assert file.display_name == "input 0"
    assert file.size_bytes == source.stat().st_size
    assert file.state == "ACTIVE" and file.source == "UPLOADED"
    assert emulator.calls() == {"batches.list": 1, "files.list": 1}


def test_get_job_of_unknown_job_is_none(emulator: EmulatorHandle) -> None:
    assert run(emulator, lambda a: a.get_job("batches/doesnotexist")) is None


def test_adapter_is_safe_to_call_from_many_tasks(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> list[LiveJob | None]:
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="c",
            inline_requests=generate_lines(1),
        )
        return list(await asyncio.gather(*(adapter.get_job(job.name) for _ in range(25))))

    results = run(emulator, body)
    assert len({r.name for r in results if r is not None}) == 1


# --- files and file jobs ---------------------------------------------------------------------


def test_file_job_round_trip_streams_results_with_their_sha256(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    lines = generate_lines(3000)
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    tag = IdentityTag(resource="capitals", spec_hash="0123456789ab", attempt=1)
    dest = tmp_path / "out.jsonl"

    async def body(adapter: GeminiAdapter) -> tuple[LiveJob, LiveJob, tuple[str, int]]:
        file = await adapter.upload_file(source, display_name="capitals input", mime_type="jsonl")
        created = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name=tag.display_name("capitals"),
            file_name=file.name,
        )
        done = await wait_terminal(adapter, created.name)
        assert done.output_file is not None
        return created, done, await adapter.download_file(done.output_file, dest)

    created, done, (digest, size) = run(emulator, body)
    assert created.state in (JobState.PENDING, JobState.RUNNING)
    assert parse_tag(created.display_name) == tag
    assert done.state is JobState.SUCCEEDED and done.end_time is not None
    data = dest.read_bytes()
    assert size == len(data) > 1 << 20, "big enough to take several 1 MiB chunks"
    assert digest == hashlib.sha256(data).hexdigest()
    keys = [json.loads(line)["key"] for line in data.decode().splitlines()]
    assert sorted(keys) == sorted(line["key"] for line in lines)


def test_embeddings_from_a_file(emulator: EmulatorHandle, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "emb.jsonl", embed_lines(5, dims=4))
    dest = tmp_path / "emb-out.jsonl"

    async def body(adapter: GeminiAdapter) -> LiveJob:
        file = await adapter.upload_file(source, display_name="emb", mime_type="jsonl")
        job = await adapter.create_job(
            model="gemini-embedding-001", task="embed", display_name="emb", file_name=file.name
        )
        done = await wait_terminal(adapter, job.name)
        assert done.output_file is not None
        await adapter.download_file(done.output_file, dest)
        return done

    done = run(emulator, body)
    assert done.state is JobState.SUCCEEDED
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    assert len(rows) == 5
    assert all(len(r["response"]["embedding"]["values"]) == 4 for r in rows)


def test_delete_file_twice_is_fine(emulator: EmulatorHandle, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate_lines(1))

    async def body(adapter: GeminiAdapter) -> Any:
        file = await adapter.upload_file(source, display_name="x", mime_type="jsonl")
        await adapter.delete_file(file.name)
        await adapter.delete_file(file.name)
        return await adapter.snapshot(include_files=True)

    assert run(emulator, body).files == {}


def test_get_file_answers_the_file_then_none_once_deleted(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate_lines(1))

    async def body(adapter: GeminiAdapter) -> Any:
        file = await adapter.upload_file(source, display_name="x", mime_type="jsonl")
        found = await adapter.get_file(file.name)
        await adapter.delete_file(file.name)
        return file, found, await adapter.get_file(file.name)

    uploaded, found, gone = run(emulator, body)
    assert found is not None and (found.name, found.state) == (uploaded.name, "ACTIVE")
    assert gone is None


# --- inline jobs -----------------------------------------------------------------------------


def test_inline_generate_results_come_back_keyed(emulator: EmulatorHandle) -> None:
    lines = generate_lines(4, prefix="inline")

    async def body(adapter: GeminiAdapter) -> Any:
        job = await adapter.create_job(
            model="gemini-2.5-flash", task="generate", display_name="inline", inline_requests=lines
        )
        done = await wait_terminal(adapter, job.name)
        return done, await adapter.inline_results(job.name)

    done, results = run(emulator, body)
    assert done.state is JobState.SUCCEEDED and done.has_inline_output
    assert [r.key for r in results] == [line["key"] for line in lines]
    for result in results:
        assert result.error is None and result.response is not None
        assert "candidates" in result.response  # REST shape, camelCase keys
        assert "usageMetadata" in result.response


def test_inline_per_request_errors_are_results_not_exceptions(emulator: EmulatorHandle) -> None:
    lines = generate_lines(1, prefix="good")

    async def body(adapter: GeminiAdapter) -> Any:
        emulator.configure(request_error_rate=1.0)
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="errs",
            inline_requests=lines,
        )
        await wait_terminal(adapter, job.name)
        return await adapter.inline_results(job.name)

    (result,) = run(emulator, body)
    assert result.key == "good-0" and result.response is None
    assert result.error is not None and result.error.code is not None


def test_inline_embeddings_are_matched_by_position(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> Any:
        job = await adapter.create_job(
            model="gemini-embedding-001",
            task="embed",
            display_name="emb-inline",
            inline_requests=embed_lines(3, dims=5),
        )
        await wait_terminal(adapter, job.name)
        return await adapter.inline_results(job.name)

    results = run(emulator, body)
    assert [r.index for r in results] == [0, 1, 2]
    for result in results:
        assert result.response is not None
        embedding = result.response["embedding"]
        assert isinstance(embedding, dict)
        values = embedding["values"]
        assert isinstance(values, list) and len(values) == 5


def test_concurrent_embed_creates_show_no_warning_and_leave_the_filters_alone(
    emulator: EmulatorHandle,
) -> None:
    """The SDK calls create_embeddings experimental on every call; the adapter silences only
    that warning, only while the SDK's call starts (other tasks run during the request)."""

    async def body(adapter: GeminiAdapter) -> list[LiveJob]:
        async def create(index: int) -> LiveJob:
            return await adapter.create_job(
                model="gemini-embedding-001",
                task="embed",
                display_name=f"emb-{index}",
                inline_requests=embed_lines(1),
            )

        return list(await asyncio.gather(*(create(i) for i in range(4))))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        jobs = run(emulator, body)
        assert warnings.filters == filters
    assert len(jobs) == 4
    assert [str(w.message) for w in caught if "experimental" in str(w.message)] == []


# --- cancel and delete -----------------------------------------------------------------------


def test_cancel_running_job_then_cancel_again(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> LiveJob | None:
        emulator.configure(job_seconds=60.0)
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="c",
            inline_requests=generate_lines(1),
        )
        await adapter.cancel_job(job.name)
        await adapter.cancel_job(job.name)
        return await adapter.get_job(job.name)

    job = run(emulator, body)
    assert job is not None and job.state is JobState.CANCELLED


def test_cancel_finished_job_is_not_an_error(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> LiveJob | None:
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="c",
            inline_requests=generate_lines(1),
        )
        await wait_terminal(adapter, job.name)
        await adapter.cancel_job(job.name)
        return await adapter.get_job(job.name)

    job = run(emulator, body)
    assert job is not None and job.state is JobState.SUCCEEDED


def test_delete_job_then_it_is_gone_and_deleting_again_is_fine(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> LiveJob | None:
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="d",
            inline_requests=generate_lines(1),
        )
        await adapter.delete_job(job.name)
        await adapter.delete_job(job.name)
        return await adapter.get_job(job.name)

    assert run(emulator, body) is None


# --- priority, changed in place --------------------------------------------------------------


def _service_priority(emu: EmulatorHandle, name: str) -> int:
    """The priority the service holds for job `name` (int64 as a string; 0 is omitted)."""
    got = httpx2.get(f"{emu.base_url}/v1beta/{name}", headers={"x-goog-api-key": API_KEY})
    return int(got.json()["metadata"].get("priority", "0"))


@pytest.mark.parametrize("task", ["generate", "embed"])
def test_priority_of_a_running_job_changes_in_place(emulator: EmulatorHandle, task: str) -> None:
    emulator.configure(job_seconds=60.0)

    async def body(adapter: GeminiAdapter) -> tuple[str, bool, int]:
        job = await adapter.create_job(
            model="gemini-2.5-flash" if task == "generate" else "gemini-embedding-001",
            task=job_task(task),
            display_name="p",
            inline_requests=generate_lines(1) if task == "generate" else embed_lines(2),
            batch_fields={"priority": 2},
        )
        changed = await adapter.set_job_priority(job.name, job_task(task), -7)
        live = await adapter.snapshot(include_files=False)
        return job.name, changed, len(live.jobs)

    name, changed, jobs = run(emulator, body)
    assert changed is True
    assert _service_priority(emulator, name) == -7
    assert jobs == 1


def test_priority_of_an_ended_job_is_left_and_reported_unchanged(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> tuple[str, bool]:
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="p",
            inline_requests=generate_lines(1),
            batch_fields={"priority": 4},
        )
        await wait_terminal(adapter, job.name)
        return job.name, await adapter.set_job_priority(job.name, "generate", 9)

    name, changed = run(emulator, body)
    assert changed is False
    assert _service_priority(emulator, name) == 4


def job_task(task: str) -> Task:
    return "generate" if task == "generate" else "embed"


# --- faults ----------------------------------------------------------------------------------


def test_injected_429s_are_rescued_by_retries(emulator: EmulatorHandle, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate_lines(2))

    async def body(adapter: GeminiAdapter) -> Any:
        emulator.configure(rate_429=0.4, seed=7)
        file = await adapter.upload_file(source, display_name="in", mime_type="jsonl")
        job = await adapter.create_job(
            model="gemini-2.5-flash", task="generate", display_name="j", file_name=file.name
        )
        for _ in range(10):
            await adapter.get_job(job.name)
        live = await adapter.snapshot(include_files=True)
        emulator.configure(rate_429=0.0)
        return job, live

    job, live = run(emulator, body)
    assert job.name in live.jobs
    calls = emulator.calls()
    # 1 upload start + 1 chunk + 1 create + 10 gets + 2 lists = 15 logical calls; 429s made more.
    assert sum(calls.values()) > 15


def test_500_forever_is_transient_and_names_the_call(emulator: EmulatorHandle) -> None:
    emulator.configure(rate_500=1.0)
    with pytest.raises(TransientServiceError) as caught:
        run(emulator, lambda a: a.snapshot(include_files=False))
    assert caught.value.call == "batches.list"
    assert caught.value.status_code == 500
    assert not caught.value.ambiguous
    assert emulator.calls()["batches.list"] == FAST.retry_attempts


def test_400_is_permanent_and_never_shows_the_key(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "emu", api_key="the-only-valid-key") as emu:
        with pytest.raises(PermanentServiceError) as caught:
            run(emu, lambda a: a.get_job("batches/abc"))
        calls = emu.calls()
    assert caught.value.status_code == 400 and caught.value.call == "batches.get"
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value.args)
    assert calls == {"batches.get": 1}, "a 400 is not retried"


def test_dropped_connection_on_create_is_ambiguous_and_not_resent(emulator: EmulatorHandle) -> None:
    emulator.configure(drop_rate=1.0)
    with pytest.raises(TransientServiceError) as caught:
        run(
            emulator,
            lambda a: a.create_job(
                model="gemini-2.5-flash",
                task="generate",
                display_name="d",
                inline_requests=generate_lines(1),
            ),
        )
    assert caught.value.ambiguous
    assert caught.value.call == "batches.create"
    assert emulator.calls() == {"batches.create_generate": 1}


def test_500_on_create_is_ambiguous_and_not_resent(emulator: EmulatorHandle) -> None:
    emulator.configure(rate_500=1.0)
    with pytest.raises(TransientServiceError) as caught:
        run(
            emulator,
            lambda a: a.create_job(
                model="gemini-embedding-001",
                task="embed",
                display_name="d",
                inline_requests=embed_lines(1),
            ),
        )
    assert caught.value.ambiguous and caught.value.status_code == 500
    assert caught.value.call == "batches.create_embeddings"
    assert emulator.calls() == {"batches.create_embed": 1}


def test_429_on_create_is_resent_because_nothing_was_created(emulator: EmulatorHandle) -> None:
    emulator.configure(max_concurrent_jobs=0)
    with pytest.raises(TransientServiceError) as caught:
        run(
            emulator,
            lambda a: a.create_job(
                model="gemini-2.5-flash", task="generate", display_name="d", file_name="files/x"
            ),
        )
    assert not caught.value.ambiguous and caught.value.status_code == 429
    assert emulator.calls() == {"batches.create_generate": FAST.retry_attempts}


def test_429_then_success_on_create_makes_exactly_one_job(emulator: EmulatorHandle) -> None:
    async def body(adapter: GeminiAdapter) -> Any:
        emulator.configure(rate_429=0.6, seed=3)
        job = await adapter.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="once",
            inline_requests=generate_lines(1),
        )
        emulator.configure(rate_429=0.0)
        return job, await adapter.snapshot(include_files=False)

    job, live = run(emulator, body)
    assert list(live.jobs) == [job.name]
    assert emulator.calls()["batches.create_generate"] > 1, "the seed must make a 429 first"


def test_create_from_a_missing_file_is_permanent_not_ambiguous(emulator: EmulatorHandle) -> None:
    with pytest.raises(PermanentServiceError) as caught:
        run(
            emulator,
            lambda a: a.create_job(
                model="gemini-2.5-flash", task="generate", display_name="d", file_name="files/nope"
            ),
        )
    assert caught.value.status_code == 404


def test_dropped_connections_during_transfers_restart_them(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate_lines(50))
    dest = tmp_path / "out.jsonl"

    async def body(adapter: GeminiAdapter) -> tuple[str, int]:
        job_file = await adapter.upload_file(source, display_name="in", mime_type="jsonl")
        job = await adapter.create_job(
            model="gemini-2.5-flash", task="generate", display_name="j", file_name=job_file.name
        )
        done = await wait_terminal(adapter, job.name)
        assert done.output_file is not None
        emulator.configure(drop_rate=0.5, seed=11)
        uploaded = await adapter.upload_file(source, display_name="again", mime_type="jsonl")
        assert uploaded.size_bytes == source.stat().st_size
        result = await adapter.download_file(done.output_file, dest)
        emulator.configure(drop_rate=0.0)
        return result

    digest, size = run(
        emulator, body, settings=AdapterSettings(**{**_fast_fields(), "transfer_attempts": 6})
    )
    assert digest == hashlib.sha256(dest.read_bytes()).hexdigest() and size == dest.stat().st_size
    calls = emulator.calls()
    transfers = sum(calls.get(r, 0) for r in ("files.upload_multipart", "files.download"))
    assert transfers > 3, f"the seed must drop some transfers: {calls}"


def _fast_fields() -> dict[str, Any]:
    return {
        "retry_attempts": FAST.retry_attempts,
        "retry_initial_delay": FAST.retry_initial_delay,
        "retry_max_delay": FAST.retry_max_delay,
        "retry_jitter": FAST.retry_jitter,
        "request_timeout": FAST.request_timeout,
        "transfer_attempts": FAST.transfer_attempts,
    }


def test_key_never_appears_in_logs_or_errors(
    emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", generate_lines(2))
    caplog.set_level(logging.DEBUG)
    errors: list[ServiceError] = []

    async def body(adapter: GeminiAdapter) -> None:
        emulator.configure(rate_429=0.3, rate_503=0.2, seed=5)
        file = await adapter.upload_file(source, display_name="in", mime_type="jsonl")
        await adapter.create_job(
            model="gemini-2.5-flash", task="generate", display_name="j", file_name=file.name
        )
        await adapter.snapshot(include_files=True)
        emulator.configure(rate_429=0.0, rate_503=0.0, rate_500=1.0)
        try:
            await adapter.get_job("batches/abc")
        except ServiceError as exc:
            errors.append(exc)

    run(emulator, body)
    assert errors and all(API_KEY not in str(e) and API_KEY not in e.message for e in errors)
    assert caplog.records, "retries were logged"
    assert API_KEY not in caplog.text
