"""A raw protocol probe of request bodies: unknown names at every depth, wrong types, missing
required fields, each answered as the service's proto-JSON parser answers.

The table's row and runner, and the emulator the probes share: tests/emulator/probing.py.
"""

from __future__ import annotations

import pytest

from reconciler.emulator import EmulatorHandle
from tests.emulator.probing import (
    CREATE,
    EMBED,
    TEXT,
    UPLOAD_START,
    Probe,
    check_probe,
    emu,
    inline,
    names,
)

__all__ = ["emu", "names"]  # fixtures, used by name

UNKNOWN = 'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
NOT_REPEATING = "Proto field is not repeating, cannot start list."
GLV = "type.googleapis.com/google.ai.generativelanguage.v1beta."

PROBES = [
    # ---- unknown names, at every depth, in both spellings' places ----
    Probe(
        "unknown-at-root",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"bogus": 1, **inline({"request": TEXT})},
        violations=((None, UNKNOWN.format(name="bogus", at="")),),
    ),
    Probe(
        "unknown-in-batch",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"batch": {"inputConfig": {"fileName": "files/x"}, "colour": "red"}},
        violations=(("batch", UNKNOWN.format(name="colour", at=" at 'batch'")),),
    ),
    Probe(
        "unknown-in-request-content-part",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body=inline({"request": {"contents": [{"parts": [{"txt": "hi"}]}]}}),
        violations=(
            (
                "batch.input_config.requests.requests[0].request.contents[0].parts[0]",
                'Unknown name "txt"',
            ),
        ),
    ),
    Probe(
        "unknown-in-inline-data",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body=inline(
            {"request": {"contents": [{"parts": [{"inlineData": {"data": "aGk=", "x": 1}}]}]}}
        ),
        violations=(
            (
                "batch.input_config.requests.requests[0].request.contents[0].parts[0].inline_data",
                'Unknown name "x"',
            ),
        ),
    ),
    Probe(
        "unknown-in-embed-request",
        "POST",
        EMBED,
        400,
        "INVALID_ARGUMENT",
        body=inline({"request": {"content": {"parts": [{"text": "a"}]}, "dims": 3}}),
        violations=(("batch.input_config.requests.requests[0].request", 'Unknown name "dims"'),),
    ),
    Probe(
        "unknown-in-upload-metadata",
        "POST",
        "/upload/v1beta/files",
        400,
        "INVALID_ARGUMENT",
        body={"file": {"displayName": "x", "colour": "red"}},
        headers=UPLOAD_START,
        violations=(("file", UNKNOWN.format(name="colour", at=" at 'file'")),),
    ),
    Probe(
        "unknown-in-update",
        "PATCH",
        "/v1beta/{batch}:updateGenerateContentBatch?updateMask=priority",
        400,
        "INVALID_ARGUMENT",
        body={"priority": 1, "urgency": 2},
        violations=((None, UNKNOWN.format(name="urgency", at="")),),
    ),
    # ---- wrong types ----
    Probe(
        "object-on-a-string",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"batch": {"displayName": {"a": 1}, "inputConfig": {"fileName": "files/x"}}},
        violations=(
            ("batch", "Invalid value at 'batch' (display_name), Starting an object on a scalar"),
        ),
    ),
    Probe(
        "number-on-a-string",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"batch": {"displayName": 7, "inputConfig": {"fileName": "files/x"}}},
        violations=(
            ("batch.display_name", "Invalid value at 'batch.display_name' (TYPE_STRING), 7"),
        ),
    ),
    Probe(
        "string-on-a-message",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"batch": {"inputConfig": "files/x"}},
        violations=(
            (
                "batch.input_config",
                f"Invalid value at 'batch.input_config' ({GLV}InputConfig), \"files/x\"",
            ),
        ),
    ),
    Probe(
        "list-on-a-single-field",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"batch": {"inputConfig": {"fileName": ["files/x"]}}},
        violations=(
            (
                "batch.input_config",
                f"Unknown name \"fileName\" at 'batch.input_config': {NOT_REPEATING}",
            ),
        ),
    ),
    Probe(
        "priority-not-an-integer",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body={"batch": {"inputConfig": {"fileName": "files/x"}, "priority": "high"}},
        violations=(
            ("batch.priority", "Invalid value at 'batch.priority' (TYPE_INT64), \"high\""),
        ),
    ),
    Probe(
        "dimensionality-past-int32",
        "POST",
        EMBED,
        400,
        "INVALID_ARGUMENT",
        body=inline(
            {"request": {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 2**31}}
        ),
        violations=(
            (
                "batch.input_config.requests.requests[0].request.output_dimensionality",
                f"(TYPE_INT32), {2**31}",
            ),
        ),
    ),
    Probe(
        "unknown-enum-value",
        "POST",
        EMBED,
        400,
        "INVALID_ARGUMENT",
        body=inline({"request": {"content": {"parts": [{"text": "a"}]}, "taskType": "GUESS"}}),
        violations=(
            (
                "batch.input_config.requests.requests[0].request.task_type",
                f'({GLV}TaskType), "GUESS"',
            ),
        ),
    ),
    Probe(
        "bytes-not-base64",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body=inline({"request": {"contents": [{"parts": [{"inlineData": {"data": "%%%"}}]}]}}),
        violations=(
            (
                "batch.input_config.requests.requests[0].request.contents[0].parts[0].inline_data.data",
                'Base64 decoding failed for "%%%"',
            ),
        ),
    ),
    Probe(
        "metadata-not-an-object",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body=inline({"request": TEXT, "metadata": "k1"}),
        violations=(
            (
                "batch.input_config.requests.requests[0].metadata",
                '(type.googleapis.com/google.protobuf.Struct), "k1"',
            ),
        ),
    ),
    Probe(
        "root-not-an-object",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        body=[1],
        violations=((None, 'Unknown name "": Root element must be a message.'),),
    ),
    Probe(
        "upload-size-not-an-integer",
        "POST",
        "/upload/v1beta/files",
        400,
        "INVALID_ARGUMENT",
        body={"file": {"sizeBytes": "big"}},
        headers=UPLOAD_START,
        violations=(("file.size_bytes", '(TYPE_INT64), "big"'),),
    ),
    Probe(
        "register-uris-not-strings",
        "POST",
        "/v1beta/files:register",
        400,
        "INVALID_ARGUMENT",
        body={"uris": [{"uri": "gs://b/o"}]},
        headers={"Authorization": "Bearer t"},
        violations=((None, "Invalid value (uris), Starting an object on a scalar field"),),
    ),
    Probe(
        "not-json",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received.",
        raw=b"{batch:",
    ),
    # ---- missing required fields ----
    Probe("no-batch", "POST", CREATE, 400, "INVALID_ARGUMENT", "batch is required", body={}),
    Probe(
        "no-input",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        "batch.input_config is required",
        body={"batch": {"displayName": "d"}},
    ),
    Probe(
        "both-inputs",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        "exactly one of file_name or requests",
        body={"batch": {"inputConfig": {"fileName": "files/x", "requests": {"requests": [{}]}}}},
    ),
    Probe(
        "no-inline-requests",
        "POST",
        CREATE,
        400,
        "INVALID_ARGUMENT",
        "must be a non-empty list",
        body=inline(),
    ),
    Probe(
        "register-no-uris",
        "POST",
        "/v1beta/files:register",
        400,
        "INVALID_ARGUMENT",
        "uris must be a non-empty list",
        body={},
        headers={"Authorization": "Bearer t"},
    ),
]


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_the_emulator_refuses_as_the_service_does(
    emu: EmulatorHandle, names: dict[str, str], probe: Probe
) -> None:
    check_probe(emu, names, probe)
