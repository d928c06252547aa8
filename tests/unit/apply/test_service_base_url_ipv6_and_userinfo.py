"""apply/records.service_base_url on URLs the first suite did not try: an IPv6 host keeps its
brackets (the recorded URL must still be a URL), and no part of the user information survives,
whatever it contains."""

from __future__ import annotations

import pytest

from reconciler.apply.records import service_base_url
from reconciler.config import ProjectConfig


@pytest.mark.parametrize(
    ("endpoint", "recorded"),
    [
        ("http://[::1]:8765/", "http://[::1]:8765"),
        ("http://tok:AIzaSyS3CRET@[::1]:8765/v1?key=AIzaSyS3CRET", "http://[::1]:8765/v1"),
        ("https://us:p@ss@w0rd@proxy.example/g", "https://proxy.example/g"),
        ("https://AIzaSyS3CRET@proxy.example:443", "https://proxy.example:443"),
        ("http://127.0.0.1:8765/;key=x?key=y#key=z", "http://127.0.0.1:8765/;key=x"),
    ],
)
def test_the_recorded_base_url_is_a_url_without_user_information_or_query(
    endpoint: str, recorded: str
) -> None:
    assert service_base_url(ProjectConfig.model_validate({"endpoint": endpoint})) == recorded
    assert "S3CRET" not in recorded and "w0rd" not in recorded
