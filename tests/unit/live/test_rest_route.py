"""The requests `plan` sends without the SDK are the SDK's own: URL, headers and timeout.

The SDK is the spec: `client.build_client` configures its client for an endpoint, and its own
request builder (sdk_request.py) says what it would send; `rest_route.developer_route` must say
the same for the same endpoint and settings, and never import the SDK to do so.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from google.genai import version

from reconciler.live.client import build_client
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.rest_route import BASE_URL_VARIABLE, developer_route, model_path, sdk_version
from reconciler.live.sdk_request import sdk_request
from reconciler.live.settings import AdapterSettings

ENDPOINTS = [
    Endpoint(EndpointKind.EMULATOR, "http://127.0.0.1:8765", "emulator", "v1beta"),
    Endpoint(EndpointKind.URL, "http://proxy.test:81/gemini/", " AIza-padded-key ", "v1beta"),
    Endpoint(EndpointKind.URL, "https://proxy.test/base", "AIza-key", "v1"),
    Endpoint(EndpointKind.GEMINI, None, "AIza-google-key", "v1beta"),
]

PATHS = [
    ("get", "batches?pageSize=100"),
    ("get", "batches?pageSize=3&pageToken=t%2F1"),
    ("get", "files?pageSize=100"),
    ("get", "files/abc-123"),
    ("get", model_path("gemini-2.5-flash")),
    ("get", model_path("tunedModels/mine-1")),
    ("post", "models/gemini-2.5-flash:batchGenerateContent"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.base_url or "google")
@pytest.mark.parametrize("timeout", [120.0, 7.25, 0.0005])
@pytest.mark.parametrize("environment_url", [None, "http://env.test:9/x/"])
def test_each_request_is_what_the_sdk_would_send_for_the_same_endpoint(
    endpoint: Endpoint,
    timeout: float,
    environment_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if environment_url is None:
        monkeypatch.delenv(BASE_URL_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(BASE_URL_VARIABLE, environment_url)
    settings = AdapterSettings(request_timeout=timeout)
    client = build_client(endpoint, settings)
    route = developer_route(endpoint, settings, os.environ)
    for method, path in PATHS:
        expected = sdk_request(client, method, path)
        assert expected is not None
        assert route(method, path) == expected, (method, path)


def test_the_sdk_version_is_read_without_importing_the_sdk() -> None:
    assert sdk_version() == version.__version__
    code = (
        "import sys\n"
        "from reconciler.live.rest_route import sdk_version\n"
        "print(sdk_version(), 'google.genai' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [version.__version__, "False"]
