"""Endpoint URLs the HTTP client would refuse only on its first request (then an "Internal
error" with no file or setting named): refused when the setting is read, saying which."""

from __future__ import annotations

import pytest

from reconciler.config import VertexSettings
from reconciler.errors import ConfigError
from reconciler.live.endpoint import EndpointKind, endpoint_kind
from reconciler.live.vertex_target import vertex_target

_UNUSABLE = [
    "http://127.0.0.1:notaport",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:-1",
    "https://:8443",
    "http://user:secret@/v1beta",
]


@pytest.mark.parametrize("url", _UNUSABLE)
def test_an_endpoint_url_without_a_usable_host_and_port_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"setting `endpoint`.*port from 0 to 65535"):
        endpoint_kind(url)


@pytest.mark.parametrize("url", _UNUSABLE)
def test_a_vertex_base_url_without_a_usable_host_and_port_is_a_config_error(url: str) -> None:
    settings = VertexSettings(
        project="p", location="l", staging="gs://team-bucket/batch", base_url=url
    )
    with pytest.raises(ConfigError, match=r"vertex\.base_url.*port from 0 to 65535"):
        vertex_target(settings, {})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "http://[::1]:8765/", "HTTPS://proxy.example", "http://h:0"]
)
def test_usable_endpoint_urls_still_resolve(url: str) -> None:
    assert endpoint_kind(url) is EndpointKind.URL
    settings = VertexSettings(
        project="p", location="l", staging="gs://team-bucket/batch", base_url=url
    )
    assert vertex_target(settings, {}).base_url == url.rstrip("/")
