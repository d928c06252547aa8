"""The one place that uses a private name of google-genai: the SDK's own request builder.

The adapter streams the bodies of uploads and downloads itself (transfer.py), but the URL and
headers of those requests should be exactly the SDK's: base URL (the endpoint, or the SDK's
default and its environment overrides), `/v1` or `/v1beta` per the client's api_version,
`x-goog-api-key`, user agent, `X-Server-Timeout`. google-genai has no public call that gives
them, so `sdk_request` asks the client's private `_api_client._build_request`. When that is not
there (another SDK release, Vertex mode), it answers None and the adapter uses the SDK's public
`files.upload` / `files.download` instead: slower, the same result.

`send_json` is the other use: a REST call the SDK has no method for (the batch update routes,
`batches/*:updateGenerateContentBatch`), sent through the client's private
`_api_client.async_request`, so URL, key, headers, errors and the client's HTTP settings are
the SDK's own. When that is not there it answers None and the caller says the call is not
available.

`model_path` and `generate_file_body` write the SDK's request for the one create the adapter
sends itself (a generate job from an uploaded file), so its path and body are the SDK's.

tests/unit/live/test_sdk_private_names.py fails when the installed SDK no longer has the
names used here, so an upgrade that moves them is seen in CI rather than as a slow transfer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google import genai

from reconciler.live.rest_route import SdkRequest, model_path

__all__ = ["SdkRequest", "generate_file_body", "model_path", "sdk_request", "send_json"]


def sdk_request(client: genai.Client, method: str, path: str) -> SdkRequest | None:
    """The SDK's request for `path` (below the API version, e.g. `files/x:download?alt=media`;
    `{api_version}` in it is filled in), or None when the SDK's builder is not reachable.

    Raises:
        ValueError: the SDK refused to build it (no base URL, an ephemeral token).
    """
    api = getattr(client, "_api_client", None)
    if api is None or getattr(api, "vertexai", True):
        return None
    build = getattr(api, "_build_request", None)
    to_url = getattr(api, "_httpx_url", None)
    if build is None or to_url is None:
        return None
    built = build(method, path, {}, None)
    return SdkRequest(to_url(built.url, is_async=True), dict(built.headers), built.timeout)


async def send_json(
    client: genai.Client, method: str, path: str, body: dict[str, object]
) -> dict[str, Any] | None:
    """Send `body` to `path` (below the API version, query string included) through the SDK's
    API client and answer the decoded JSON object; None when that client is not reachable (another
    SDK release, Vertex mode). SDK errors (`google.genai.errors.APIError`) propagate.
    """
    api = getattr(client, "_api_client", None)
    if api is None or getattr(api, "vertexai", True):
        return None
    send = getattr(api, "async_request", None)
    if send is None:
        return None
    response = await send(method, path, body)
    decoded = json.loads(response.body) if response.body else {}
    return decoded if isinstance(decoded, dict) else {}


def generate_file_body(
    display_name: str, file_name: str, batch_fields: Mapping[str, object] | None
) -> dict[str, object]:
    """The body of `batches.create` for a generate job read from an uploaded file, as the SDK
    sends it (`_CreateBatchJobParameters_to_mldev`, then `extra_body` merged into `batch`);
    tests/unit/live/test_rest_jobs.py captures the SDK's own request and compares."""
    batch: dict[str, object] = {"inputConfig": {"fileName": file_name}, "displayName": display_name}
    batch.update(batch_fields or {})
    return {"batch": batch}
