"""The emulator's admin API (`/_emulator/*`) is a test tool: with an API key set it needs the key,
and its writes need Content-Type: application/json (no cross-site form posts)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reconciler.emulator import running_emulator

pytestmark = pytest.mark.secret_scan


def _send(url: str, *, body: object = None, headers: dict[str, str] | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers=headers or {}, method="POST" if data else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


JSON = {"Content-Type": "application/json"}


def test_admin_settings_need_the_key_when_one_is_set(tmp_path: Path) -> None:
    with running_emulator(tmp_path, api_key="s3cret") as emu:
        url = f"{emu.base_url}/_emulator/settings"
        assert _send(url, body={"api_key": None}, headers=JSON) == 403
        assert (
            _send(url, body={"rate_500": 1.0}, headers={**JSON, "x-goog-api-key": "wrong"}) == 403
        )
        assert _send(url) == 403
        assert _send(f"{emu.base_url}/_emulator/calls") == 403
        assert emu.configure().api_key == "s3cret", "authentication is still on"
        assert (
            _send(url, body={"rate_500": 0.0}, headers={**JSON, "x-goog-api-key": "s3cret"}) == 200
        )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_admin_writes_need_a_json_content_type(tmp_path: Path, content_type: str) -> None:
    with running_emulator(tmp_path) as emu:
        headers = {"Content-Type": content_type} if content_type else {}
        status = _send(
            f"{emu.base_url}/_emulator/settings", body={"rate_500": 1.0}, headers=headers
        )
        assert status == 415
        assert emu.configure().rate_500 == 0.0
        assert _send(f"{emu.base_url}/_emulator/calls/reset", body={}, headers=headers) == 415
        assert (
            _send(f"{emu.base_url}/_emulator/settings", body={"rate_500": 0.5}, headers=JSON) == 200
        )
