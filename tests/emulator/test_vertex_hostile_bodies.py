"""A Vertex create body whose parts have the wrong JSON type (an object where a string goes, a
number where a message goes, a list of non-strings for `uris`) is Vertex's proto-JSON 400
naming the field, not a 500 with a traceback, and not accepted as the string it spells."""

from __future__ import annotations

import copy
from typing import Any

import httpx2 as httpx
import pytest

from reconciler.emulator import EmulatorHandle

pytestmark = pytest.mark.hostile_input

JOBS = "/v1/projects/p/locations/us-central1/batchPredictionJobs"
HEADERS = {"Authorization": "Bearer placeholder"}
BODY: dict[str, Any] = {
    "displayName": "d",
    "model": "publishers/google/models/gemini-2.5-flash",
    "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": ["gs://b/in.jsonl"]}},
    "outputConfig": {
        "predictionsFormat": "jsonl",
        "gcsDestination": {"outputUriPrefix": "gs://b/out"},
    },
}


def _with(path: tuple[str, ...], value: object) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    at = body
    for name in path[:-1]:
        at = at[name]
    at[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "field", "type_name"),
    [
        (("inputConfig", "gcsSource"), 5, "input_config.gcs_source", "GcsSource"),
        (("inputConfig", "gcsSource"), "gs://b/x", "input_config.gcs_source", "GcsSource"),
        (("inputConfig", "bigquerySource"), True, "input_config.bigquery_source", "BigQuery"),
        (("outputConfig", "gcsDestination"), [1], "output_config", "not repeating"),
        (("outputConfig", "bigqueryDestination"), -1, "output_config.bigquery_destination", "B"),
        (("inputConfig", "gcsSource", "uris"), [1], "input_config.gcs_source.uris[0]", "STRING"),
        (("inputConfig", "gcsSource", "uris"), [{"a": 1}], "input_config.gcs_source", "object"),
        (("inputConfig",), "x", "input_config", "BatchPredictionJob.InputConfig"),
        (("labels",), ["a"], "", "list"),
        (("displayName",), {"x": 1}, "", "object"),
    ],
)
def test_a_create_part_of_the_wrong_json_type_is_a_400_naming_it(
    emu: EmulatorHandle, path: tuple[str, ...], value: object, field: str, type_name: str
) -> None:
    response = httpx.post(emu.base_url + JOBS, json=_with(path, value), headers=HEADERS)

    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert field in error["message"] and type_name in error["message"]
    assert httpx.get(emu.base_url + JOBS, headers=HEADERS).status_code == 200


def test_a_single_uri_string_is_one_element_as_proto_json_reads_it(emu: EmulatorHandle) -> None:
    body = _with(("inputConfig", "gcsSource", "uris"), "gs://b/in.jsonl")
    response = httpx.post(emu.base_url + JOBS, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text[:300]
