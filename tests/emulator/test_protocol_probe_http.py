"""A raw protocol probe of names, methods, query parameters, authentication and the resumable
upload protocol, each answered as the service answers.

The table's row and runner, and the emulator the probes share: tests/emulator/probing.py.
"""

from __future__ import annotations

import httpx
import pytest

from reconciler.emulator import EmulatorHandle
from tests.emulator.probing import (
    CREATE,
    KEY,
    MODEL,
    UPLOAD_START,
    Probe,
    check_probe,
    emu,
    names,
)

__all__ = ["emu", "names"]  # fixtures, used by name

PROBES = [
    # ---- names ----
    Probe("batch-not-found", "GET", "/v1beta/batches/nope", 404, "NOT_FOUND", "batches/nope"),
    # `..` percent-encoded: a client removes literal dot segments before sending, the server
    # decodes these back to `batches/../files`, which names nothing.
    Probe("dot-segments", "GET", "/v1beta/batches/%2E%2E/files", 404, "NOT_FOUND"),
    Probe("batch-under-files", "GET", "/v1beta/files/{batch_id}", 404, "NOT_FOUND"),
    Probe("nested-name", "GET", "/v1beta/batches/a/b", 404, "NOT_FOUND"),
    Probe("unknown-verb", "POST", "/v1beta/{batch}:pause", 404, "NOT_FOUND", "'pause'"),
    Probe("unknown-model-method", "POST", f"/v1beta/models/{MODEL}:batchDance", 404, "NOT_FOUND"),
    Probe("unknown-version", "GET", "/v9/files", 404, "NOT_FOUND", "v9"),
    Probe(
        "file-id-ends-in-a-dash",
        "POST",
        "/upload/v1beta/files",
        400,
        "INVALID_ARGUMENT",
        body={"file": {"name": "files/bad-"}},
        headers=UPLOAD_START,
        violations=(("file.name", "lower-case alphanumerics or dashes"),),
    ),
    Probe(
        "display-name-over-512",
        "POST",
        "/upload/v1beta/files",
        400,
        "INVALID_ARGUMENT",
        body={"file": {"displayName": "d" * 513}},
        headers=UPLOAD_START,
        violations=(("file.display_name", "no more than 512 characters"),),
    ),
    # ---- methods ----
    Probe("put-on-a-file", "PUT", "/v1beta/files/{file_id}", 405, "UNIMPLEMENTED"),
    Probe("post-on-batches", "POST", "/v1beta/batches", 405, "UNIMPLEMENTED"),
    Probe("delete-on-models", "DELETE", f"/v1beta/models/{MODEL}", 405, "UNIMPLEMENTED"),
    # ---- query parameters ----
    Probe(
        "unknown-query-parameter",
        "GET",
        "/v1beta/files?colour=red",
        400,
        "INVALID_ARGUMENT",
        violations=(
            (
                None,
                "Unknown name \"colour\": Cannot bind query parameter. Field 'colour' could not"
                " be found in request message.",
            ),
        ),
    ),
    Probe(
        "list-parameter-on-get",
        "GET",
        "/v1beta/{batch}?pageSize=3",
        400,
        "INVALID_ARGUMENT",
        'Unknown name "pageSize": Cannot bind query parameter.',
    ),
    Probe(
        "page-size-not-a-number",
        "GET",
        "/v1beta/batches?pageSize=ten",
        400,
        "INVALID_ARGUMENT",
        violations=(("page_size", "Invalid value at 'page_size' (TYPE_INT32), \"ten\""),),
    ),
    Probe("negative-page-size", "GET", "/v1beta/files?pageSize=-1", 400, "INVALID_ARGUMENT"),
    Probe(
        "page-token-not-issued",
        "GET",
        "/v1beta/files?pageToken=bm9wZQ",
        400,
        "INVALID_ARGUMENT",
        violations=(("page_token", "Invalid page token"),),
    ),
    Probe(
        "page-token-of-another-collection",
        "GET",
        "/v1beta/batches?pageToken={files_token}",
        400,
        "INVALID_ARGUMENT",
        "Invalid page token",
    ),
    Probe(
        "return-partial-success",
        "GET",
        "/v1beta/batches?returnPartialSuccess=true",
        501,
        "UNIMPLEMENTED",
    ),
    Probe(
        "fields-not-a-selector",
        "GET",
        "/v1beta/files?fields=files(name",
        400,
        "INVALID_ARGUMENT",
        "unclosed '('",
    ),
    Probe("alt-unknown", "GET", "/v1beta/files?alt=xml", 400, "INVALID_ARGUMENT", "'alt'"),
    Probe("alt-proto", "GET", "/v1beta/files?$alt=proto", 501, "UNIMPLEMENTED", "alt=proto"),
    Probe(
        "update-mask-of-an-immutable-field",
        "PATCH",
        "/v1beta/{batch}:updateGenerateContentBatch?updateMask=model",
        400,
        "INVALID_ARGUMENT",
        body={"model": "models/x"},
        violations=(("update_mask", "'model' cannot be updated"),),
    ),
    # ---- authentication ----
    Probe(
        "no-key",
        "GET",
        "/v1beta/files",
        403,
        "PERMISSION_DENIED",
        "unregistered callers",
        headers={"x-goog-api-key": ""},
    ),
    # ---- resumable uploads ----
    Probe(
        "upload-session-unknown",
        "POST",
        "/upload/v1beta/files?upload_id=nope&upload_protocol=resumable",
        404,
        "NOT_FOUND",
        raw=b"x",
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
    ),
    Probe(
        "upload-unknown-protocol",
        "POST",
        "/upload/v1beta/files",
        400,
        "INVALID_ARGUMENT",
        "Unsupported X-Goog-Upload-Protocol 'carrier-pigeon'",
        body={"file": {}},
        headers={"X-Goog-Upload-Protocol": "carrier-pigeon", "X-Goog-Upload-Command": "start"},
    ),
    Probe(
        "upload-start-without-start",
        "POST",
        "/upload/v1beta/files",
        400,
        "INVALID_ARGUMENT",
        "starts with X-Goog-Upload-Command: start",
        body={"file": {}},
        headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "upload"},
    ),
    Probe(
        "upload-unknown-command",
        "POST",
        "{upload_url}",
        400,
        "INVALID_ARGUMENT",
        "Unsupported X-Goog-Upload-Command 'explode'",
        raw=b"x",
        headers={"X-Goog-Upload-Command": "upload, explode", "X-Goog-Upload-Offset": "0"},
    ),
    Probe(
        "upload-wrong-offset",
        "POST",
        "{upload_url}",
        400,
        "INVALID_ARGUMENT",
        "does not match 0 bytes received",
        raw=b"abc",
        headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "5"},
    ),
    Probe(
        "upload-finalized-short",
        "POST",
        "{upload_url}",
        400,
        "INVALID_ARGUMENT",
        "finalized after 1 of 3 bytes",
        raw=b"a",
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
    ),
]


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_the_emulator_refuses_as_the_service_does(
    emu: EmulatorHandle, names: dict[str, str], probe: Probe
) -> None:
    check_probe(emu, names, probe)


def test_download_without_alt_media_answers_the_empty_json_response(
    emu: EmulatorHandle, names: dict[str, str]
) -> None:
    """`files/{id}:download` is a media method: its bytes come with `alt=media`; without it
    the method answers its JSON response, which has no fields."""
    url = f"{emu.base_url}/v1beta/files/{names['file_id']}:download"
    plain = httpx.get(url, headers=KEY)
    assert (plain.status_code, plain.json()) == (200, {})
    assert plain.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("query", "header", "top", "item"),
    [
        ("fields=files(name,sizeBytes)", None, {"files"}, {"name", "sizeBytes"}),
        ("$fields=files/name,nextPageToken", None, {"files", "nextPageToken"}, {"name"}),
        ("fields=files.size_bytes", None, {"files"}, {"sizeBytes"}),
        ("", "files.name", {"files"}, {"name"}),
        ("fields=files(*)", None, {"files"}, None),
    ],
    ids=["group", "dollar-and-slash", "snake-case-and-dot", "x-goog-fieldmask", "star"],
)
def test_fields_keeps_only_the_selected_fields(
    emu: EmulatorHandle,
    names: dict[str, str],
    query: str,
    header: str | None,
    top: set[str],
    item: set[str] | None,
) -> None:
    """The `fields` system parameter (or the X-Goog-FieldMask header) filters a JSON answer;
    `item` None: every field of each file is kept."""
    headers = {**KEY, **({"X-Goog-FieldMask": header} if header else {})}
    full = httpx.get(f"{emu.base_url}/v1beta/files", headers=KEY).json()
    got = httpx.get(f"{emu.base_url}/v1beta/files?{query}", headers=headers).json()
    assert set(got) == top
    want = (
        full["files"]
        if item is None
        else [{key: value for key, value in file.items() if key in item} for file in full["files"]]
    )
    assert got["files"] == want


def test_both_spellings_of_a_field_are_the_same_field(emu: EmulatorHandle) -> None:
    """The proto-JSON parser takes camelCase and snake_case names alike, mixed in one body."""
    body = {
        "batch": {
            "display_name": "snake",
            "inputConfig": {
                "requests": {
                    "requests": [
                        {
                            "request": {
                                "contents": [{"parts": [{"text": "hi"}]}],
                                "generation_config": {"temperature": 0.1},
                                "systemInstruction": {"parts": [{"text": "be brief"}]},
                            },
                            "metadata": {"key": "k"},
                        }
                    ]
                }
            },
        }
    }
    created = httpx.post(emu.base_url + CREATE, json=body, headers=KEY)
    assert created.status_code == 200, created.text
    assert created.json()["metadata"]["displayName"] == "snake"
