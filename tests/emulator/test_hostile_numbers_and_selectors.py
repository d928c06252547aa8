"""Hostile values the proto-JSON reader and the `fields` selector now parse: a 400 in the
service's error shape, never a 500 with a traceback, and never a parse whose cost grows with
the square of the request (it runs on the server's event loop, so one request would stall
every other)."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from reconciler.emulator import EmulatorHandle, partial

pytestmark = pytest.mark.hostile_input

KEY = {"x-goog-api-key": "k"}
CREATE = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"


def _invalid_argument(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    return str(error["message"])


def _still_answering(emu: EmulatorHandle) -> None:
    assert httpx.get(f"{emu.base_url}/v1beta/batches", headers=KEY).status_code == 200


@pytest.mark.parametrize(
    "digits", ["9" * 5_000, "-" + "9" * 5_000, "0" * 5_000 + "1", "9" * 21], ids=str.__len__
)
def test_an_int64_written_as_a_string_of_thousands_of_digits_is_a_400(
    emu: EmulatorHandle, digits: str
) -> None:
    body = b'{"batch": {"priority": "' + digits.encode() + b'"}}'
    response = httpx.post(
        emu.base_url + CREATE, content=body, headers={**KEY, "Content-Type": "application/json"}
    )
    message = _invalid_argument(response)
    if digits.lstrip("0") == "1":
        # In range after its leading zeros: read as 1, so the create fails on what is missing.
        assert "priority" not in message
    else:
        assert message.startswith("Invalid value at 'batch.priority' (TYPE_INT64)")
    _still_answering(emu)


@pytest.mark.parametrize(
    "selector",
    [
        "/".join(["name"] * 2_000),
        ".".join(["name"] * 2_000),
        "batches(" * 2_000 + "name" + ")" * 2_000,
    ],
    ids=["slashes", "dots", "groups"],
)
@pytest.mark.parametrize("where", ["query", "header"])
def test_a_fields_selector_nested_past_any_answer_is_a_400(
    emu: EmulatorHandle, selector: str, where: str
) -> None:
    url = f"{emu.base_url}/v1beta/batches"
    response = (
        httpx.get(url, params={"fields": selector}, headers=KEY)
        if where == "query"
        else httpx.get(url, headers={**KEY, "X-Goog-FieldMask": selector})
    )
    assert "nested deeper than" in _invalid_argument(response)
    _still_answering(emu)


def test_a_selector_nested_as_deep_as_an_answer_still_filters(emu: EmulatorHandle) -> None:
    response = httpx.get(
        f"{emu.base_url}/v1beta/batches",
        params={"fields": "batches(metadata(batchStats(requestCount))),nextPageToken"},
        headers=KEY,
    )
    assert response.status_code == 200
    assert response.json() == {}


@pytest.mark.timeout(120)
def test_a_long_flat_selector_parses_in_linear_work() -> None:
    # 300,000 names: a parse that copies the rest of the token list (or strips the whole
    # selector again) at every name does 4.5e10 copies, hours; pytest-timeout stops that. The
    # server's header limit (about 100 kB) bounded it to a stall of tens of seconds per request.
    selection = partial.parse(",".join(f"n{i % 7}" for i in range(300_000)))
    assert selection == {f"n{i}": None for i in range(7)}
