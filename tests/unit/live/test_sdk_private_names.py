"""live/sdk_request.py: the one private google-genai name the adapter relies on is still there.

When an SDK release moves `_api_client._build_request` or `_httpx_url`, the adapter silently
falls back to the SDK's public (slower) transfer calls; this test makes that upgrade visible.
"""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from google import genai
from google.genai import types

from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, build_client
from reconciler.live.sdk_request import sdk_request, send_json

KEY = "AIzaSy-private-names-0123456789"


def test_the_installed_sdk_has_the_private_request_builder() -> None:
    api = genai.Client(api_key=KEY, vertexai=False)._api_client
    assert callable(getattr(api, "_build_request", None))
    assert callable(getattr(api, "_httpx_url", None))
    assert callable(getattr(api, "async_request", None))  # send_json: the batch update call
    assert api.vertexai is False


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_sdk_request_is_the_sdks_own_request(api_version: str) -> None:
    endpoint = Endpoint(EndpointKind.URL, "http://service.test", KEY, api_version)
    client = build_client(endpoint, AdapterSettings(request_timeout=7.0))
    built = sdk_request(client, "get", "files/abc:download?alt=media")
    assert built is not None
    assert built.url == f"http://service.test/{api_version}/files/abc:download?alt=media"
    assert built.headers["x-goog-api-key"] == KEY
    assert built.timeout == 7.0
    start = sdk_request(client, "post", "upload/{api_version}/files")
    assert start is not None
    assert start.url == f"http://service.test/upload/{api_version}/files"


def test_sdk_request_answers_none_without_the_builder() -> None:
    class Bare:
        pass

    assert sdk_request(Bare(), "get", "files/x") is None  # type: ignore[arg-type]


def test_send_json_answers_none_in_vertex_mode_without_sending() -> None:
    client = genai.Client(vertexai=True, project="p", location="us-central1")
    body: dict[str, object] = {"priority": "1"}
    answer = asyncio.run(send_json(client, "patch", "batches/x:update?updateMask=priority", body))
    assert answer is None


def test_the_sdk_takes_the_adapters_http_client() -> None:
    http = httpx2.AsyncClient()
    client = genai.Client(
        api_key=KEY, vertexai=False, http_options=types.HttpOptions(httpx_async_client=http)
    )
    assert client._api_client._async_httpx_client is http
