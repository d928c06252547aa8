"""`RestReader` (the reads of `plan`, without the SDK) holds to the adapter's SDK calls: the same
requests on the wire, the same Live values from the same answers, the same errors and retries.

Both sides run over one httpx2 MockTransport (STYLE §2) for the same endpoint: the adapter's
real SDK client (`build_client`) lists files and gets models with the SDK's converters and
models; the reader sends `rest_route`'s requests and reads the JSON itself.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx2
import pytest

from reconciler.clock import FakeClock
from reconciler.errors import PermanentServiceError, ServiceError, TransientServiceError
from reconciler.live.client import build_client
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, GeminiAdapter
from reconciler.live.rest_reads import RestReader, ServiceReader
from reconciler.live.rest_route import developer_route

T = TypeVar("T")
KEY = "AIza-unit-secret"
ENDPOINT = Endpoint(EndpointKind.URL, "http://service.test", KEY, "v1beta")

FILES: list[dict[str, Any]] = [
    {
        "name": "files/in-1",
        "displayName": "rc-input",
        "mimeType": "application/jsonl",
        "sizeBytes": "1234",
        "createTime": "2026-12-03T10:00:00.123456789Z",
        "updateTime": "2026-12-03T10:00:01Z",
        "expirationTime": "2026-12-05T10:00:00Z",
        "sha256Hash": "ZGlnZXN0",
        "uri": "http://service.test/v1beta/files/in-1",
        "state": "ACTIVE",
        "source": "UPLOADED",
    },
    {
        "name": "files/batch-out",
        "sizeBytes": 77,
        "state": "active",
        "source": "GENERATED",
        "downloadUri": "http://service.test/download/v1beta/files/batch-out:download",
        "someFieldAddedLater": {"x": 1},
    },
    {"name": "files/bare"},
    {"name": "files/processing", "state": "PROCESSING", "source": "registered"},
    {"name": "files/odd", "state": "SOMETHING_NEW", "source": "x.ELSEWHERE"},
]

MODELS: list[dict[str, Any]] = [
    {
        "name": "models/gemini-2.5-flash",
        "displayName": "Gemini 2.5 Flash",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": "65536",
        "supportedGenerationMethods": ["generateContent", "batchGenerateContent"],
        "temperature": 1,
    },
    {"name": "models/bare"},
    {"supportedGenerationMethods": []},
]


def _both(
    handler: Callable[[httpx2.Request], httpx2.Response],
    body: Callable[[ServiceReader], Coroutine[Any, Any, T]],
    *,
    page_size: int = 100,
) -> tuple[T | BaseException, T | BaseException, list[httpx2.Request]]:
    """`body` run on the SDK adapter, then on the reader; what each returned or raised, and
    every request sent (the adapter's first)."""
    seen: list[httpx2.Request] = []

    def recording(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return handler(request)

    settings = AdapterSettings(retry_initial_delay=0.0, retry_jitter=0.0, page_size=page_size)

    async def side(make: Callable[[httpx2.AsyncClient], ServiceReader]) -> T | BaseException:
        service = make(httpx2.AsyncClient(transport=httpx2.MockTransport(recording)))
        try:
            return await body(service)
        except ServiceError as exc:
            return exc
        finally:
            await service.aclose()

    def adapter(http: httpx2.AsyncClient) -> ServiceReader:
        client = build_client(ENDPOINT, settings, http=http)
        return GeminiAdapter(
            client, clock=FakeClock(), settings=settings, secrets=(KEY,), http=http
        )

    def reader(http: httpx2.AsyncClient) -> ServiceReader:
        route = developer_route(ENDPOINT, settings, {})
        return RestReader(route, http, clock=FakeClock(), settings=settings, secrets=(KEY,))

    sdk = asyncio.run(side(adapter))
    ours = asyncio.run(side(reader))
    return sdk, ours, seen


def _wire(request: httpx2.Request) -> tuple[str, str, dict[str, str], dict[str, Any]]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return request.method, str(request.url), headers, dict(request.extensions.get("timeout", {}))


def _split(seen: list[httpx2.Request]) -> tuple[list[Any], list[Any]]:
    half = len(seen) // 2
    return [_wire(r) for r in seen[:half]], [_wire(r) for r in seen[half:]]


@pytest.mark.filterwarnings("ignore:SOMETHING_NEW is not a valid FileState")
@pytest.mark.filterwarnings("ignore:x.ELSEWHERE is not a valid FileSource")
def test_the_files_listing_is_the_sdks_requests_and_reading() -> None:
    pages = {None: (FILES[:3], "t1"), "t1": (FILES[3:], None)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/batches"):
            return httpx2.Response(200, json={})
        files, token = pages[request.url.params.get("pageToken")]
        return httpx2.Response(200, json={"files": files, "nextPageToken": token})

    async def files(service: ServiceReader) -> Any:
        return (await service.snapshot(include_files=True)).files

    sdk, ours, seen = _both(handler, files, page_size=3)
    assert ours == sdk
    assert isinstance(ours, dict)
    assert sorted(ours) == sorted(f["name"] for f in FILES)
    adapter_calls, reader_calls = _split(seen)
    assert sorted(reader_calls) == sorted(adapter_calls)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.get("name", "unnamed"))
def test_a_model_is_the_sdks_request_and_reading(model: dict[str, Any]) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=model)

    sdk, ours, seen = _both(handler, lambda s: s.get_model("gemini-2.5-flash"))
    assert ours == sdk
    adapter_calls, reader_calls = _split(seen)
    assert reader_calls == adapter_calls


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"error": {"code": 404, "message": "no such model", "status": "NOT_FOUND"}}),
        (400, {"error": {"code": 400, "message": f"bad key {KEY}", "status": "INVALID_ARGUMENT"}}),
        (503, {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}),
    ],
)
def test_a_refused_model_lookup_fails_alike_after_the_same_retries(
    status: int, body: dict[str, Any]
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body)

    sdk, ours, seen = _both(handler, lambda s: s.get_model("gemini-2.5-flash"))
    if status == 404:
        assert sdk is None and ours is None
    else:
        assert isinstance(ours, ServiceError) and isinstance(sdk, ServiceError)
        assert type(ours) is type(sdk)
        assert str(ours) == str(sdk)
        assert KEY not in str(ours)
    adapter_calls, reader_calls = _split(seen)
    assert reader_calls == adapter_calls  # as many tries, each the same request


def test_a_file_the_service_does_not_have_is_none_and_one_it_has_is_read() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/gone"):
            return httpx2.Response(
                403, json={"error": {"code": 403, "status": "PERMISSION_DENIED"}}
            )
        return httpx2.Response(200, json=FILES[0])

    async def look(service: ServiceReader) -> Any:
        return await service.get_file("files/gone"), await service.get_file("files/in-1")

    sdk, ours, seen = _both(handler, look)
    assert ours == sdk
    assert ours[0] is None  # type: ignore[index]
    adapter_calls, reader_calls = _split(seen)
    assert reader_calls == adapter_calls


@pytest.mark.parametrize(
    "file",
    [{"name": "files/x", "sizeBytes": "many"}, {"name": "files/x", "createTime": "yesterday"}, {}],
)
def test_an_unreadable_file_in_the_listing_is_a_malformed_answer(file: dict[str, Any]) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/batches"):
            return httpx2.Response(200, json={})
        return httpx2.Response(200, json={"files": [file]})

    async def files(service: ServiceReader) -> Any:
        return (await service.snapshot(include_files=True)).files

    sdk, ours, _ = _both(handler, files)
    assert isinstance(sdk, PermanentServiceError)
    assert isinstance(ours, PermanentServiceError)
    assert "malformed answer" in str(ours)


def test_a_files_walk_that_fails_leaves_no_jobs_walk_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The jobs walk is still waiting for its page when the files walk fails for good: it is
    # cancelled and awaited, so the error the caller meets is the files walk's alone and
    # asyncio reports no task whose exception was never retrieved.
    release = asyncio.Event()

    async def slow_jobs(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/batches"):
            await release.wait()
            return httpx2.Response(500, json={"error": {"code": 500, "status": "INTERNAL"}})
        return httpx2.Response(400, json={"error": {"code": 400, "message": "no files for you"}})

    async def main() -> BaseException:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(slow_jobs))
        settings = AdapterSettings(retry_initial_delay=0.0, retry_jitter=0.0)
        reader = RestReader(
            developer_route(ENDPOINT, settings, {}), http, clock=FakeClock(), settings=settings
        )
        try:
            await reader.snapshot(include_files=True)
        except ServiceError as exc:
            return exc
        finally:
            release.set()
            await reader.aclose()
        raise AssertionError("no error")

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        failure = asyncio.run(main())
        gc.collect()
    assert isinstance(failure, PermanentServiceError)
    assert failure.call == "files.list"
    assert "no files for you" in str(failure)
    assert "never retrieved" not in caplog.text


def test_a_listing_page_that_fails_transiently_restarts_only_its_own_walk() -> None:
    tries = {"batches": 0, "files": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        kind = "batches" if request.url.path.endswith("/batches") else "files"
        tries[kind] += 1
        if kind == "files" and tries[kind] == 1:
            return httpx2.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}})
        return httpx2.Response(200, json={kind if kind == "files" else "operations": []})

    async def main() -> Any:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
        settings = AdapterSettings(retry_initial_delay=0.0, retry_jitter=0.0)
        reader = RestReader(
            developer_route(ENDPOINT, settings, {}), http, clock=FakeClock(), settings=settings
        )
        try:
            return await reader.snapshot(include_files=True)
        finally:
            await reader.aclose()

    live = asyncio.run(main())
    assert live.files_listed and live.files == {} and live.jobs == {}
    assert tries == {"batches": 1, "files": 2}
    assert json.dumps(tries)  # counted, not timed


def test_a_transient_failure_raised_by_the_reader_is_transient() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, json={"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})

    sdk, ours, _ = _both(handler, lambda s: s.snapshot(include_files=False))
    assert isinstance(ours, TransientServiceError) and isinstance(sdk, TransientServiceError)
    assert str(ours) == str(sdk)
