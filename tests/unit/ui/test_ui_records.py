"""A results line as the viewer shows it: texts, images, finish reason, tokens, error."""

from __future__ import annotations

import json

from reconciler.ui.records import inline_prompts, input_prompt, result_view


def _line(data: object) -> bytes:
    return json.dumps(data).encode()


def test_a_response_shows_its_text_finish_reason_and_tokens() -> None:
    view = result_view(
        0,
        _line(
            {
                "key": "a",
                "response": {
                    "candidates": [
                        {"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}
                    ],
                    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5},
                },
            }
        ),
    )
    assert (view.key, view.texts, view.finish_reason) == ("a", ("hi",), "STOP")
    assert view.tokens is not None and (view.tokens.prompt, view.tokens.output) == (3, 5)
    assert not view.failed


def test_an_error_line_is_a_failure_with_its_message() -> None:
    view = result_view(4, _line({"key": "b", "error": {"code": 13, "message": "internal"}}))
    assert view.failed and view.error == "13 internal"
    assert view.answer == "error: 13 internal"


def test_images_are_named_by_file_beside_the_results_or_carried_inline() -> None:
    parts = [
        {"file": {"path": "img-1-abc.png", "mimeType": "image/png", "bytes": 79}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
    ]
    view = result_view(
        0, _line({"key": "i", "response": {"candidates": [{"content": {"parts": parts}}]}})
    )
    assert [(i.path, i.data_b64) for i in view.images] == [("img-1-abc.png", None), (None, "AAAA")]


def test_a_line_that_is_not_json_is_shown_as_a_note_not_an_error_page() -> None:
    assert result_view(0, b"{not json").notes == ("this line is not JSON",)


def test_prompts_come_from_the_request_texts_and_name_media_parts() -> None:
    key, prompt = input_prompt(
        _line(
            {
                "key": "k",
                "request": {
                    "contents": [
                        {"parts": [{"text": "Describe"}, {"file_data": {"path": "a.png"}}]}
                    ]
                },
            }
        )
    )
    assert key == "k" and prompt == "Describe\n[data: a.png]"


def test_unnamed_inline_requests_are_keyed_in_order() -> None:
    prompts = inline_prompts(
        [
            {"contents": [{"parts": [{"text": "one"}]}]},
            {"key": "x", "request": {"content": {"parts": [{"text": "two"}]}}},
        ]
    )
    assert prompts == {"request-1": "one", "x": "two"}
