"""Pure translations: service state names, REST requests split for the SDK's inline models."""

from __future__ import annotations

import pytest

from reconciler.live.wire import (
    job_state_from_service,
    split_embed_requests,
    split_generate_request,
    strip_prefix,
)
from reconciler.state.document import JobState


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BATCH_STATE_PENDING", JobState.PENDING),
        ("BATCH_STATE_RUNNING", JobState.RUNNING),
        ("BATCH_STATE_SUCCEEDED", JobState.SUCCEEDED),
        ("BATCH_STATE_FAILED", JobState.FAILED),
        ("BATCH_STATE_CANCELLED", JobState.CANCELLED),
        ("BATCH_STATE_EXPIRED", JobState.EXPIRED),
        ("JOB_STATE_SUCCEEDED", JobState.SUCCEEDED),
        ("job_state_running", JobState.RUNNING),
        ("JOB_STATE_QUEUED", JobState.PENDING),
        ("JOB_STATE_CANCELLING", JobState.RUNNING),
        ("BATCH_STATE_UNSPECIFIED", JobState.PENDING),
        (None, JobState.PENDING),
        ("BATCH_STATE_SOMETHING_NEW", JobState.UNKNOWN),
    ],
)
def test_job_state_maps_both_prefixes_and_any_case(raw: str | None, expected: JobState) -> None:
    assert job_state_from_service(raw) is expected


def test_unknown_and_cancelling_states_are_not_terminal() -> None:
    assert not job_state_from_service("BATCH_STATE_CANCELLING").is_terminal
    assert not job_state_from_service("BATCH_STATE_WHATEVER").is_terminal


def test_strip_prefix_drops_the_enum_class() -> None:
    assert strip_prefix("FileState.ACTIVE") == "ACTIVE"
    assert strip_prefix("ACTIVE") == "ACTIVE"
    assert strip_prefix(None) is None


def test_generate_request_flattens_generation_config_and_request_level_fields() -> None:
    parts = split_generate_request(
        {
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"temperature": 0.5, "responseMimeType": "application/json"},
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "safety_settings": [
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
            ],
            "model": "models/gemini-2.5-flash",
        }
    )
    assert parts.contents == [{"parts": [{"text": "hi"}]}]
    assert parts.model == "models/gemini-2.5-flash"
    assert parts.config == {
        "temperature": 0.5,
        "responseMimeType": "application/json",
        "system_instruction": {"parts": [{"text": "sys"}]},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }


@pytest.mark.parametrize(
    "request_",
    [
        {"generationConfig": {}},
        {"contents": [], "generationConfig": "hot"},
        {"contents": [], "surprise": 1},
    ],
)
def test_generate_request_rejects_what_the_sdk_would_drop_or_fail_on(
    request_: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        split_generate_request(request_)


def test_embed_requests_share_one_config_in_either_spelling() -> None:
    parts = split_embed_requests(
        [
            {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
            {"content": {"parts": [{"text": "b"}]}, "output_dimensionality": 3},
        ]
    )
    assert parts.contents == [{"parts": [{"text": "a"}]}, {"parts": [{"text": "b"}]}]
    assert parts.config == {"output_dimensionality": 3}


def test_embed_requests_with_different_options_are_refused() -> None:
    with pytest.raises(ValueError, match="must share"):
        split_embed_requests(
            [
                {"content": {"parts": [{"text": "a"}]}, "title": "one"},
                {"content": {"parts": [{"text": "b"}]}, "title": "two"},
            ]
        )


@pytest.mark.parametrize(
    "requests",
    [[], [{"taskType": "RETRIEVAL_QUERY"}], [{"content": {}, "bogus": 1}]],
)
def test_embed_requests_without_content_or_with_unknown_fields_are_refused(
    requests: list[dict[str, object]],
) -> None:
    with pytest.raises(ValueError):
        split_embed_requests(requests)
