"""The emulator's usageMetadata is shaped like the service's: thinking tokens for models that
think (within the budget), cached tokens inside the prompt, the total adding thinking."""

from __future__ import annotations

from typing import Any

from reconciler.emulator.model import CACHED_CONTENT_TOKENS, generate


def _usage(model: str, **request: Any) -> dict[str, Any]:
    body = {"contents": [{"parts": [{"text": "what is the sea made of?"}]}], **request}
    usage: dict[str, Any] = generate(model, body, lambda uri: True)["usageMetadata"]
    return usage


def test_thinking_models_report_thoughts_within_their_budget() -> None:
    usage = _usage("gemini-2.5-flash")
    assert usage["thoughtsTokenCount"] > 0
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )
    capped = _usage("gemini-2.5-flash", generationConfig={"thinkingConfig": {"thinkingBudget": 8}})
    assert capped["thoughtsTokenCount"] == 8


def test_no_thinking_when_turned_off_or_for_models_that_do_not_think() -> None:
    off = _usage("gemini-2.5-flash", generationConfig={"thinkingConfig": {"thinkingBudget": 0}})
    assert "thoughtsTokenCount" not in off
    assert "thoughtsTokenCount" not in _usage("gemini-2.5-flash-lite")
    assert "thoughtsTokenCount" not in _usage("gemini-2.5-flash-image")


def test_a_cached_content_request_reports_its_cached_tokens_inside_the_prompt() -> None:
    plain = _usage("gemini-2.5-flash-lite")
    cached = _usage("gemini-2.5-flash-lite", cachedContent="cachedContents/abc")
    assert cached["cachedContentTokenCount"] == CACHED_CONTENT_TOKENS
    assert cached["promptTokenCount"] == plain["promptTokenCount"] + CACHED_CONTENT_TOKENS
    assert "cachedContentTokenCount" not in plain
