"""The SDK's request for a Developer API call, written without the SDK, and one JSON call sent.

`plan` reads the service (the jobs and files listings, `models.get`) and nothing else, and
importing google.genai and building its client was a tenth of a no-op plan at 10,000 resources
(benchmarks/RESULTS.md, Session 8). So the reads are sent over the adapter's HTTP client
(http.py) with the request the SDK would make: its base URL (the endpoint's, else
`GOOGLE_GEMINI_BASE_URL`, else Google's), `/<api version>/<path>`, and its headers --
`Content-Type`, `x-goog-api-key`, the user agent and `x-goog-api-client` naming the installed
SDK's version, `X-Server-Timeout` -- and its timeout. tests/unit/live/test_rest_route.py
compares every part with what the SDK's own builder (sdk_request.py) makes for the same
endpoint, so a new SDK release that changes them is seen.

It must not import google.genai.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse, urlunparse

import httpx2

from reconciler.live.boundary import raise_for_status
from reconciler.live.endpoint import Endpoint
from reconciler.live.settings import AdapterSettings

GOOGLE_BASE_URL: Final = "https://generativelanguage.googleapis.com/"
"""The SDK's Developer API base URL when neither the client nor the environment names one."""

BASE_URL_VARIABLE: Final = "GOOGLE_GEMINI_BASE_URL"
"""The environment variable the SDK reads a Developer API base URL from."""

_VERSION = re.compile(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SdkRequest:
    """What the SDK would send for one request, minus the body."""

    url: str
    headers: dict[str, str]
    timeout: float | None
    """Seconds, from the client's `HttpOptions.timeout`."""


Route = Callable[[str, str], SdkRequest]
"""(method, path below the API version, query included) -> the SDK's request for it."""


@functools.cache
def sdk_version() -> str:
    """The installed google-genai's version, read from its `version.py` without importing the
    package (whose `__init__` loads the whole client); `importlib.metadata` only if that file
    says nothing readable (importing it cost ~0.4 s on a busy machine)."""
    spec = importlib.util.find_spec("google.genai")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            found = _VERSION.search((Path(folder) / "version.py").read_text(encoding="utf-8"))
        except OSError:
            continue
        if found:
            return found.group(1)
    return importlib.metadata.version("google-genai")


def _library_headers() -> str:
    """`user-agent` and `x-goog-api-client` as the SDK writes them with no headers of ours."""
    return f"google-genai-sdk/{sdk_version()} gl-python/{sys.version.split()[0]}"


def developer_route(
    endpoint: Endpoint, settings: AdapterSettings, environ: Mapping[str, str]
) -> Route:
    """The SDK's requests for `endpoint` (a Developer API endpoint: `gemini`, `emulator` or a
    URL) as `client.build_client` configures its client: the endpoint's API version, our
    timeout (the SDK takes it in whole milliseconds, and sends the seconds rounded up)."""
    base = endpoint.base_url or environ.get(BASE_URL_VARIABLE) or GOOGLE_BASE_URL
    timeout = int(settings.request_timeout * 1000) / 1000
    headers = {"Content-Type": "application/json"}
    if endpoint.api_key.strip():
        headers["x-goog-api-key"] = endpoint.api_key.strip()
    labels = _library_headers()
    headers["user-agent"] = labels
    headers["x-goog-api-client"] = labels
    if timeout:
        headers["X-Server-Timeout"] = str(math.ceil(timeout))

    def route(method: str, path: str) -> SdkRequest:
        del method  # the SDK's request differs by method only in its body
        url = _join(base, f"{endpoint.api_version}/{path}")
        return SdkRequest(url, dict(headers), timeout or None)

    return route


def _join(base_url: str, path: str) -> str:
    """The SDK's `join_url_path`: the base URL's path without its last slash, then `/path`."""
    parts = urlparse(base_url)
    base_path = parts.path.removesuffix("/")
    return urlunparse(parts._replace(path=f"{base_path}/{path.removeprefix('/')}"))


def model_path(model: str) -> str:
    """The resource path of `model` in a Developer API URL, as the SDK writes it
    (`_transformers.t_model`): `models/` added unless the name has it or is a tuned model.

    Raises:
        ValueError: a name the SDK refuses to put in a URL.
    """
    if not model:
        raise ValueError("model is required.")
    if ".." in model or "?" in model or "&" in model:
        raise ValueError("invalid model parameter.")
    if model.startswith(("models/", "tunedModels/")):
        return model
    return f"models/{model}"


async def call_json(
    http: httpx2.AsyncClient, built: SdkRequest, method: str, body: Mapping[str, object] | None
) -> dict[str, Any]:
    """One JSON call as `built` says, on `http`; the decoded object answered.

    Raises:
        ErrorAnswer: an error answer, read as the SDK reads one (boundary.py).
        ValueError: the answer is not a JSON object (as the SDK's parsing raises it; the
            boundary maps it, after a create as one that may have made the job).
        httpx2.HTTPError: the request failed on the way.
    """
    response = await http.request(
        method.upper(),
        built.url,
        headers=built.headers,
        content=None if body is None else json.dumps(body).encode(),
        timeout=built.timeout,
    )
    await raise_for_status(response)
    answer = json.loads(response.content) if response.content else {}
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    return answer
