"""The raw protocol probe's table row, runner and shared emulator (the fixtures `emu` and
`names`, imported by name), used by test_protocol_probe_bodies.py and
test_protocol_probe_http.py: plain HTTP (no SDK) at the emulator's Developer API routes, each
refusal checked against what the service answers (docs/emulator-conformance.md, "Request
bodies" and "Query parameters and names", names the evidence for each row).

Every error must be the service's shape, `{"error": {"code", "message", "status",
"details"?}}`, with google.rpc.BadRequest field violations where the service gives them (none
carrying a `field` for a problem at the body's root).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import EmulatorHandle, running_emulator

KEY = {"x-goog-api-key": "test"}
MODEL = "gemini-2.5-flash"
CREATE = f"/v1beta/models/{MODEL}:batchGenerateContent"
EMBED = "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"
UPLOAD_START = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}
TEXT = {"contents": [{"parts": [{"text": "hi"}]}]}


@dataclasses.dataclass(frozen=True)
class Probe:
    id: str
    method: str
    path: str
    status: int
    grpc: str
    message: str = ""
    """A substring of `error.message`."""
    body: Any = None
    """JSON to send (None: no body)."""
    raw: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    violations: tuple[tuple[str | None, str], ...] | None = None
    """Expected BadRequest field violations: (field or None at the root, description part)."""


def inline(*items: Any) -> dict[str, Any]:
    """A create body of inline requests."""
    return {"batch": {"inputConfig": {"requests": {"requests": list(items)}}}}


def start_upload(client: httpx.Client, size: int, file: dict[str, Any]) -> str:
    """A resumable session's upload URL."""
    start = client.post(
        "/upload/v1beta/files",
        json={"file": file},
        headers={**UPLOAD_START, "X-Goog-Upload-Header-Content-Length": str(size)},
    )
    return start.headers["X-Goog-Upload-URL"]


def probe_names(emu: EmulatorHandle) -> dict[str, str]:
    """Resources the probes name (the emulator lists one item per page): a file, an open
    batch, a files page token, an open upload session of 3 bytes."""
    with httpx.Client(base_url=emu.base_url, headers=KEY) as client:
        files = []
        for _ in range(2):
            done = client.post(
                start_upload(client, 2, {"mimeType": "text/plain"}),
                content=b"hi",
                headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
            )
            files.append(done.json()["file"]["name"])
        batch = client.post(CREATE, json=inline({"request": TEXT})).json()["name"]
        return {
            "file_id": files[0].removeprefix("files/"),
            "batch": batch,
            "batch_id": batch.removeprefix("batches/"),
            "files_token": client.get("/v1beta/files").json()["nextPageToken"],
            "upload_url": start_upload(client, 3, {}),
        }


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """One emulator for a probe module, listing one item per page (so a page token exists)."""
    root: Path = tmp_path_factory.mktemp("probe")
    with running_emulator(root / "emulator", job_seconds=60, page_size=1) as handle:
        yield handle


@pytest.fixture(scope="module")
def names(emu: EmulatorHandle) -> dict[str, str]:
    """What `Probe.path` placeholders name (`probe_names`), made once per module."""
    return probe_names(emu)


def check_probe(emu: EmulatorHandle, names: dict[str, str], probe: Probe) -> None:
    """Send `probe`'s request and assert the error is the one the service answers."""
    path = probe.path.format(**names)
    url = path if path.startswith("http") else emu.base_url + path
    headers = {**KEY, **probe.headers}
    content = probe.raw if probe.raw is not None else None
    if probe.body is not None:
        content = json.dumps(probe.body).encode()
        headers.setdefault("Content-Type", "application/json")
    with httpx.Client() as client:
        request = client.build_request(probe.method, url, content=content, headers=headers)
        response = client.send(request)
    assert response.status_code == probe.status, response.text
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "status", "details"}
    assert (error["code"], error["status"]) == (probe.status, probe.grpc)
    assert probe.message in error["message"]
    if probe.violations is None:
        return
    (detail,) = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    found = [(v.get("field"), v["description"]) for v in detail["fieldViolations"]]
    assert len(found) == len(probe.violations), found
    for (field, description), (want_field, want_part) in zip(found, probe.violations, strict=True):
        assert field == want_field
        assert want_part in description
        assert description in error["message"]  # the message repeats each violation
