"""The Gemini batch adapter's public surface: what apply/ and cli/ import from live/.

live/ is the only package that imports google.genai (DESIGN §8), and everything it hands out
is the tool's own type (snapshot.py) or a `ServiceError`. The modules behind these names, in
the order a call flows through them:

- client.py    `build_client`, `connect`, `open_adapter`: the SDK client for an endpoint, over
               the HTTP pool of http.py; starts the in-process emulator for `emulator`.
- adapter.py   `GeminiAdapter`: the Files and Batches calls; vertex.py `VertexAdapter`: Vertex AI
               batch prediction and Cloud Storage behind the same calls (service.py
               `BatchService`), opened by vertex_client.py for `endpoint: vertex`.
- transfer.py  streamed uploads and downloads, `DownloadFollower`; writes.py: their disk side.
- sdk_request.py  the one use of a private SDK name (the SDK's request builder).
- convert.py   SDK objects -> Live values, inline requests -> SDK sources.
- boundary.py  the error boundary (failures -> ServiceError, key redaction, retry predicates).
- retry.py, settings.py  retry loops (injected clock and random generator), `AdapterSettings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.live.adapter import GeminiAdapter
from reconciler.live.boundary import CREATE_RESENDABLE_STATUS, RETRYABLE_STATUS
from reconciler.live.client import build_client, connect, open_adapter
from reconciler.live.service import BatchService
from reconciler.live.settings import MAX_PAGE_SIZE, AdapterSettings, Task
from reconciler.live.transfer import DownloadFollower, Progress

if TYPE_CHECKING:
    from reconciler.live.vertex_bigquery import TableCheck
    from reconciler.manifests.remote import Remote


async def remote_objects(service: BatchService, uris: Sequence[str]) -> dict[str, Remote | None]:
    """`source.gcs` objects and `source.bigquery` tables as the service sees them (vertex.py).
    Imported when asked: only projects with such sources do, and a Gemini run never loads the
    Vertex modules (their BigQuery and Cloud Storage clients)."""
    from reconciler.live.vertex import remote_objects as look

    return await look(service, uris)


async def bigquery_checks(
    service: BatchService, sources: Sequence[str], outputs: Sequence[str]
) -> list[TableCheck]:
    """`doctor`'s checks of BigQuery source tables and output datasets (vertex.py), imported
    when asked like `remote_objects`."""
    from reconciler.live.vertex import bigquery_checks as check

    return await check(service, sources, outputs)


__all__ = [
    "CREATE_RESENDABLE_STATUS",
    "MAX_PAGE_SIZE",
    "RETRYABLE_STATUS",
    "AdapterSettings",
    "BatchService",
    "DownloadFollower",
    "GeminiAdapter",
    "Progress",
    "Task",
    "bigquery_checks",
    "build_client",
    "connect",
    "open_adapter",
    "remote_objects",
]
