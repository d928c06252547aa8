"""The adapter's own batch calls (a create from an uploaded file, the `batches.list` walk) hold to
the SDK's: the same request on the wire, and the same `LiveJob` from the same answer.

The SDK is the spec here. Both sides run over one httpx2 MockTransport (STYLE §2): the real SDK
makes its request and reads the answer with its own converters and models; the adapter, given
the HTTP client, sends its own and reads the JSON itself (rest_values.job_from_rest).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx2
import pytest
from google import genai
from google.genai import types

from reconciler.clock import FakeClock
from reconciler.errors import PermanentServiceError, TransientServiceError
from reconciler.live import convert, rest_values
from reconciler.live.batch_stats import parse_stats
from reconciler.live.gemini import AdapterSettings, GeminiAdapter
from reconciler.state.document import JobState

T = TypeVar("T")
KEY = "AIza-unit-secret"

OPERATIONS: list[dict[str, Any]] = [
    {"name": "batches/pending", "metadata": {"state": "BATCH_STATE_PENDING", "displayName": "d"}},
    {
        "name": "batches/done",
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "name": "batches/done",
            "displayName": "job [rc:p/r@abc:1.s0r0]",
            "model": "models/gemini-2.5-flash",
            "state": "BATCH_STATE_SUCCEEDED",
            "createTime": "2026-12-03T10:00:00.123456789Z",
            "updateTime": "2026-12-03T10:05:00Z",
            "endTime": "2026-12-03T10:05:00.5Z",
            "output": {"responsesFile": "files/out-1"},
            "batchStats": {
                "requestCount": "3",
                "successfulRequestCount": "2",
                "failedRequestCount": "1",
            },
        },
        "done": True,
    },
    {
        "name": "batches/inline",
        "metadata": {
            "state": "BATCH_STATE_SUCCEEDED",
            "output": {
                "inlinedResponses": {
                    "inlinedResponses": [
                        {"response": {"candidates": []}, "metadata": {"key": "a"}},
                    ]
                }
            },
        },
    },
    {
        "name": "batches/embedded",
        "metadata": {
            "state": "BATCH_STATE_SUCCEEDED",
            "output": {
                "inlinedResponses": {
                    "inlinedResponses": [{"response": {"embedding": {"values": [0.5]}}}]
                }
            },
        },
    },
    {"name": "batches/running", "metadata": {"state": "BATCH_STATE_RUNNING"}},
    {"name": "batches/odd", "metadata": {"state": "BATCH_STATE_SOMETHING_NEW"}},
    {"name": "batches/bare"},
    {"name": "batches/failed", "metadata": {"state": "JOB_STATE_FAILED", "output": {}}},
]


def _run(
    handler: Callable[[httpx2.Request], httpx2.Response],
    body: Callable[[GeminiAdapter, genai.Client], Coroutine[Any, Any, T]],
    *,
    page_size: int = 100,
) -> T:
    async def main() -> T:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
        client = genai.Client(
            api_key=KEY,
            http_options=types.HttpOptions(
                base_url="http://service.test",
                api_version="v1beta",
                httpx_async_client=http,
                timeout=30_000,
            ),
        )
        adapter = GeminiAdapter(
            client,
            clock=FakeClock(),
            settings=AdapterSettings(
                retry_initial_delay=0.0, retry_jitter=0.0, page_size=page_size
            ),
            secrets=(KEY,),
            http=http,
        )
        try:
            return await body(adapter, client)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


def _answer(payload: object, status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, json=payload)


def _seen(request: httpx2.Request) -> tuple[str, str, dict[str, str], object]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return request.method, str(request.url), headers, json.loads(request.content or b"null")


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("gemini-2.5-flash", {}),
        ("models/gemini-2.5-flash", {"priority": 5}),
        ("tunedModels/mine-123", {"priority": -2}),
    ],
)
def test_a_create_from_a_file_sends_the_sdks_request(model: str, fields: dict[str, Any]) -> None:
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return _answer(OPERATIONS[0])

    async def both(adapter: GeminiAdapter, client: genai.Client) -> None:
        await client.aio.batches.create(
            model=model,
            src=types.BatchJobSource(file_name="files/in-1"),
            config=types.CreateBatchJobConfig(
                display_name="job [rc:p/r@abc:1.s0r0]",
                http_options=types.HttpOptions(
                    retry_options=types.HttpRetryOptions(attempts=1),
                    extra_body={"batch": fields} if fields else None,
                ),
            ),
        )
        await adapter.create_job(
            model=model,
            task="generate",
            display_name="job [rc:p/r@abc:1.s0r0]",
            file_name="files/in-1",
            batch_fields=fields or None,
        )

    _run(handler, both)
    sdk, ours = (_seen(r) for r in requests)
    assert ours == sdk
    assert requests[1].extensions.get("timeout") == requests[0].extensions.get("timeout")


@pytest.mark.filterwarnings("ignore:BATCH_STATE_SOMETHING_NEW is not a valid JobState")
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o["name"])
def test_a_job_read_from_the_answer_is_what_the_sdk_makes_of_it(operation: dict[str, Any]) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return _answer(operation)

    async def sdk_reads(adapter: GeminiAdapter, client: genai.Client) -> types.BatchJob:
        return await client.aio.batches.get(name=operation["name"])

    job = _run(handler, sdk_reads)
    stats = parse_stats(operation.get("metadata", {}).get("batchStats"))
    expected = convert.live_job(job, "batches.get", stats=stats)
    assert rest_values.job_from_rest(operation, "batches.list") == expected


def test_a_job_the_service_reports_in_a_state_it_does_not_know_is_unknown() -> None:
    odd = next(o for o in OPERATIONS if o["name"] == "batches/odd")
    assert rest_values.job_from_rest(odd, "batches.list").state is JobState.UNKNOWN


@pytest.mark.parametrize(
    "operation",
    [
        {"metadata": {}},
        {"name": ""},
        {"name": "batches/x", "metadata": {"createTime": "yesterday"}},
        {"name": "batches/x", "metadata": {"displayName": 7}},
        ["not", "an", "operation"],
    ],
)
def test_an_unreadable_job_is_a_malformed_answer(operation: object) -> None:
    with pytest.raises(PermanentServiceError, match="malformed answer"):
        rest_values.job_from_rest(operation, "batches.list")


def test_the_listing_walks_every_page_as_the_sdk_asks_for_them() -> None:
    pages = {
        None: (OPERATIONS[:3], "t1"),
        "t1": (OPERATIONS[3:6], "t2"),
        "t2": (OPERATIONS[6:], ""),
    }
    asked: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append(str(request.url))
        assert request.headers["x-goog-api-key"] == KEY
        operations, token = pages[request.url.params.get("pageToken")]
        return _answer({"operations": operations, "nextPageToken": token})

    async def walk(adapter: GeminiAdapter, client: genai.Client) -> list[str]:
        live = await adapter.snapshot(include_files=False)
        return sorted(live.jobs)

    names = _run(handler, walk, page_size=3)
    assert names == sorted(o["name"] for o in OPERATIONS)
    assert asked == [
        "http://service.test/v1beta/batches?pageSize=3",
        "http://service.test/v1beta/batches?pageSize=3&pageToken=t1",
        "http://service.test/v1beta/batches?pageSize=3&pageToken=t2",
    ]


def test_a_listing_page_that_fails_transiently_restarts_the_walk() -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            return _answer(
                {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}, 503
            )
        token = request.url.params.get("pageToken")
        if token is None:
            return _answer({"operations": OPERATIONS[:1], "nextPageToken": "t1"})
        return _answer({"operations": OPERATIONS[1:2]})

    async def walk(adapter: GeminiAdapter, client: genai.Client) -> list[str]:
        return sorted((await adapter.snapshot(include_files=False)).jobs)

    assert _run(handler, walk) == ["batches/done", "batches/pending"]
    assert calls == 4


def test_a_create_answered_with_something_unreadable_may_have_made_the_job() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"<html>gateway</html>")

    async def create(adapter: GeminiAdapter, client: genai.Client) -> None:
        await adapter.create_job(
            model="gemini-2.5-flash", task="generate", display_name="d", file_name="files/in-1"
        )

    with pytest.raises(TransientServiceError) as caught:
        _run(handler, create)
    assert caught.value.ambiguous


def test_a_create_the_service_refuses_is_its_error_with_the_key_kept_out() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        message = f"model not found (key {KEY})"
        return _answer({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}, 404)

    async def create(adapter: GeminiAdapter, client: genai.Client) -> None:
        await adapter.create_job(
            model="gemini-nope", task="generate", display_name="d", file_name="files/in-1"
        )

    with pytest.raises(PermanentServiceError) as caught:
        _run(handler, create)
    assert caught.value.status_code == 404
    assert KEY not in str(caught.value)
