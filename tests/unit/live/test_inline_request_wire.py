"""What the adapter puts on the wire for inline jobs, and how it reads answers the emulator cannot
produce (malformed bodies). Faked at the transport seam: the real SDK over an httpx2
MockTransport (STYLE §2), so the SDK's own converters are what is tested."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx2
import pytest
from google import genai
from google.genai import types

from reconciler.clock import FakeClock
from reconciler.errors import PermanentServiceError, TransientServiceError
from reconciler.live.gemini import AdapterSettings, GeminiAdapter

T = TypeVar("T")
KEY = "AIza-unit-secret"
OPERATION = {
    "name": "batches/abc",
    "metadata": {"name": "batches/abc", "state": "BATCH_STATE_PENDING", "displayName": "d"},
}


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _normalise(value: Any) -> Any:
    """Proto JSON accepts field names in either spelling; compare in one of them."""
    if isinstance(value, dict):
        return {_camel(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _run(
    handler: Callable[[httpx2.Request], httpx2.Response],
    body: Callable[[GeminiAdapter], Coroutine[Any, Any, T]],
) -> T:
    async def main() -> T:
        client = genai.Client(
            api_key=KEY,
            http_options=types.HttpOptions(
                base_url="http://service.test",
                api_version="v1beta",
                httpx_async_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
            ),
        )
        adapter = GeminiAdapter(
            client,
            clock=FakeClock(),
            settings=AdapterSettings(retry_initial_delay=0.0, retry_jitter=0.0),
            secrets=(KEY,),
        )
        try:
            return await body(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


REST_REQUEST: dict[str, Any] = {
    "contents": [{"role": "user", "parts": [{"text": "Name a colour."}]}],
    "systemInstruction": {"parts": [{"text": "Answer in one word."}]},
    "generationConfig": {
        "temperature": 0.2,
        "maxOutputTokens": 50,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"colour": {"type": "string"}}},
        "thinkingConfig": {"thinkingBudget": 0},
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    "tools": [{"googleSearch": {}}],
}


def test_inline_generate_request_reaches_the_wire_as_the_rest_request_with_its_key() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=OPERATION)

    job = _run(
        handler,
        lambda a: a.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="d [rc:x@0123456789ab:1]",
            inline_requests=[{"key": "k1", "request": REST_REQUEST}],
        ),
    )
    assert job.name == "batches/abc"
    batch = seen[0]["batch"]
    assert batch["displayName"] == "d [rc:x@0123456789ab:1]"
    (item,) = batch["inputConfig"]["requests"]["requests"]
    assert item["metadata"] == {"key": "k1"}
    assert _normalise(item["request"]) == _normalise(REST_REQUEST)


def test_extra_batch_fields_such_as_priority_reach_the_batch_object() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=OPERATION)

    _run(
        handler,
        lambda a: a.create_job(
            model="gemini-2.5-flash",
            task="generate",
            display_name="d",
            file_name="files/abc",
            batch_fields={"priority": 5},
        ),
    )
    batch = seen[0]["batch"]
    assert batch["priority"] == 5
    assert batch["displayName"] == "d"
    assert _normalise(batch["inputConfig"]) == {"fileName": "files/abc"}


def test_inline_embed_requests_share_their_config_on_the_wire() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=OPERATION)

    lines = [
        {"key": k, "request": {"content": {"parts": [{"text": k}]}, "outputDimensionality": 3}}
        for k in ("a", "b")
    ]
    _run(
        handler,
        lambda a: a.create_job(
            model="gemini-embedding-001", task="embed", display_name="e", inline_requests=lines
        ),
    )
    requests = seen[0]["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["request"] for r in requests] == [
        {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
        {"content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3},
    ]


def test_bad_inline_request_fails_before_any_call() -> None:
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, json=OPERATION)

    with pytest.raises(PermanentServiceError) as caught:
        _run(
            handler,
            lambda a: a.create_job(
                model="m",
                task="generate",
                display_name="d",
                inline_requests=[{"key": "k", "request": {"contents": [], "oops": 1}}],
            ),
        )
    assert calls == []
    assert caught.value.call == "batches.create"


def test_malformed_answer_is_permanent_and_names_the_call() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"<html>not json</html>")

    with pytest.raises(PermanentServiceError) as caught:
        _run(handler, lambda a: a.get_job("batches/abc"))
    assert caught.value.call == "batches.get"
    assert "malformed" in str(caught.value)


def test_non_200_success_is_permanent() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(204)

    with pytest.raises(PermanentServiceError) as caught:
        _run(handler, lambda a: a.delete_job("batches/abc"))
    assert caught.value.status_code == 204


def test_malformed_create_answer_is_ambiguous_because_the_job_may_exist() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"{not json")

    with pytest.raises(TransientServiceError) as caught:
        _run(
            handler,
            lambda a: a.create_job(
                model="m", task="generate", display_name="d", file_name="files/x"
            ),
        )
    assert caught.value.ambiguous


def test_key_echoed_by_a_service_is_redacted_from_errors() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = {
            "error": {
                "code": 400,
                "message": f"API key {KEY} not valid",
                "status": "INVALID_ARGUMENT",
            }
        }
        return httpx2.Response(400, json=body)

    with pytest.raises(PermanentServiceError) as caught:
        _run(handler, lambda a: a.snapshot(include_files=False))
    assert KEY not in str(caught.value) and KEY not in caught.value.message
    assert caught.value.status_code == 400
