"""apply/records.service_base_url: where an attempt was created, as the state records it, with
no secret of the endpoint's URL."""

from __future__ import annotations

import pytest

from reconciler.apply.records import service_base_url
from reconciler.config import ProjectConfig


@pytest.mark.parametrize(
    ("settings", "recorded"),
    [
        ({"endpoint": "gemini"}, None),
        ({"endpoint": "emulator"}, "emulator"),
        ({"endpoint": " Emulator "}, "emulator"),
        ({"endpoint": "http://127.0.0.1:8765/"}, "http://127.0.0.1:8765"),
        (
            {"endpoint": "https://user:secret@proxy.example:8443/gemini/?key=abc#x"},
            "https://proxy.example:8443/gemini",
        ),
        ({"endpoint": "vertex", "vertex": {"project": "p", "location": "us-central1"}}, None),
        (
            {
                "endpoint": "vertex",
                "vertex": {"project": "p", "location": "us-central1", "base_url": "emulator"},
            },
            "emulator",
        ),
    ],
)
def test_the_recorded_base_url_names_where_jobs_go_without_secrets(
    settings: dict[str, object], recorded: str | None
) -> None:
    assert service_base_url(ProjectConfig.model_validate(settings)) == recorded
