"""The `batchStats` of batch jobs, read from the service's answers beside the SDK.

The Developer API reports each job's request counts (`metadata.batchStats`: requestCount,
successfulRequestCount, failedRequestCount, pendingRequestCount) on `batches.list` and
`batches.get`, but google-genai's conversion of the answer keeps only `completion_stats`, which
it fills for Vertex alone. So the adapter taps the JSON answers of those two calls on its own
HTTP client (an httpx2 response hook, its public extension point) and keeps the latest counts
per job name; the SDK still makes and parses every call.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Final

import httpx2

from reconciler.live.snapshot import BatchStats

_BATCH_PATHS: Final = re.compile(r"/batches(/[^/:]+)?$")
"""`GET .../batches` (list) and `GET .../batches/<id>` (get); not `:cancel` and the like."""


def parse_stats(value: object) -> BatchStats | None:
    """`batchStats` (proto3 JSON: int64 counters as strings, zeros omitted) -> BatchStats."""
    if not isinstance(value, Mapping):
        return None

    def count(name: str) -> int:
        raw = value.get(name)
        try:
            return max(0, int(raw)) if isinstance(raw, str | int) else 0
        except ValueError:
            return 0

    return BatchStats(
        total=count("requestCount"),
        succeeded=count("successfulRequestCount"),
        failed=count("failedRequestCount"),
    )


class StatsTap:
    """Latest `batchStats` seen per job name. Install with `install(client)`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, BatchStats] = {}

    def install(self, client: httpx2.AsyncClient) -> None:
        client.event_hooks = {
            **client.event_hooks,
            "response": [*client.event_hooks.get("response", []), self._on_response],
        }

    def get(self, name: str) -> BatchStats | None:
        with self._lock:
            return self._seen.get(name)

    async def _on_response(self, response: httpx2.Response) -> None:
        request = response.request
        if request.method != "GET" or response.status_code != 200:
            return
        if not _BATCH_PATHS.search(request.url.path):
            return
        # Read here (the SDK reads the same cached body next): small JSON answers only.
        body = await response.aread()
        try:
            answer = json.loads(body)
        except ValueError:
            return
        operations = answer.get("operations") if isinstance(answer, dict) else None
        items = operations if isinstance(operations, list) else [answer]
        found: dict[str, BatchStats | None] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            metadata = item.get("metadata")
            stats = parse_stats(metadata.get("batchStats")) if isinstance(metadata, dict) else None
            found[item["name"]] = stats
        with self._lock:
            for name, stats in found.items():
                if stats is None:
                    self._seen.pop(name, None)
                else:
                    self._seen[name] = stats
