"""Endpoint resolution: gemini / emulator / URL, and the key as the SDK reads it."""

from __future__ import annotations

import pytest

from reconciler.errors import ConfigError
from reconciler.live.endpoint import (
    EMULATOR_API_KEY,
    EndpointKind,
    api_key_from_env,
    endpoint_kind,
    resolve_endpoint,
)

SECRET = "AIzaSy-very-secret-key"


def test_google_api_key_wins_over_gemini_api_key_as_in_the_sdk() -> None:
    assert api_key_from_env({"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"}) == "g"
    assert api_key_from_env({"GEMINI_API_KEY": "m"}) == "m"
    assert api_key_from_env({"GOOGLE_API_KEY": "", "GEMINI_API_KEY": "m"}) == "m"
    assert api_key_from_env({}) is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("gemini", EndpointKind.GEMINI),
        ("Emulator", EndpointKind.EMULATOR),
        ("http://127.0.0.1:8080", EndpointKind.URL),
        ("https://proxy.example/gemini/", EndpointKind.URL),
    ],
)
def test_endpoint_kinds(value: str, kind: EndpointKind) -> None:
    assert endpoint_kind(value) is kind


@pytest.mark.parametrize("value", ["vertex-ish", "ftp://x", "http://", ""])
def test_invalid_endpoint_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError):
        endpoint_kind(value)


def test_gemini_without_a_key_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_endpoint("gemini", api_version="v1beta", environ={})
    assert caught.value.hint is not None and "GEMINI_API_KEY" in caught.value.hint


def test_gemini_uses_the_sdk_default_base_url_and_never_shows_the_key() -> None:
    endpoint = resolve_endpoint("gemini", api_version="v1beta", environ={"GEMINI_API_KEY": SECRET})
    assert endpoint.base_url is None and endpoint.api_key == SECRET
    assert SECRET not in repr(endpoint) and SECRET not in str(endpoint)


def test_url_endpoint_takes_the_env_key_only_when_trusted_else_a_fixed_one() -> None:
    environ = {"GEMINI_API_KEY": SECRET, "RECONCILER_TRUST_ENDPOINT": "https://h:1"}
    with_key = resolve_endpoint("https://h:1/", api_version="v1", environ=environ)
    assert with_key.base_url == "https://h:1" and with_key.api_key == SECRET
    with pytest.raises(ConfigError):
        resolve_endpoint("https://h:1", api_version="v1", environ={"GEMINI_API_KEY": SECRET})
    without = resolve_endpoint("http://h:1", api_version="v1", environ={})
    assert without.api_key == EMULATOR_API_KEY


def test_embedded_emulator_never_receives_the_real_key() -> None:
    endpoint = resolve_endpoint(
        "emulator",
        api_version="v1beta",
        environ={"GEMINI_API_KEY": SECRET},
        emulator_base_url="http://127.0.0.1:5555",
    )
    assert endpoint.api_key == EMULATOR_API_KEY
    assert endpoint.base_url == "http://127.0.0.1:5555"
