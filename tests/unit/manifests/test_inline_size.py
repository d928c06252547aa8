"""manifests/inline_size.py against the body the SDK really sends: the create call for inline
requests is captured at the HTTP transport (the SDK's own conversion and serialisation, the
adapter's own request split), never rebuilt by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from reconciler.live import convert
from reconciler.live.tags import DISPLAY_NAME_MAX, IdentityTag
from reconciler.manifests.inline_size import (
    DISPLAY_NAME_MAX as COUNTED_DISPLAY_NAME_MAX,
)
from reconciler.manifests.inline_size import LIMIT_BYTES, inline_body_bytes

Request = dict[str, Any]


def sent_body(
    lines: list[tuple[str, Request]], *, embed: bool, display_name: str, priority: int | None
) -> bytes:
    """The bytes the SDK puts on the wire for this create call, as the adapter makes it."""
    bodies: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        job = {
            "name": "batches/x",
            "metadata": {"name": "batches/x", "state": "BATCH_STATE_PENDING"},
        }
        return httpx.Response(200, json=job)

    options = types.HttpOptions(
        base_url="http://service.test", client_args={"transport": httpx.MockTransport(answer)}
    )
    client = genai.Client(api_key="k", http_options=options)
    extra = {"batch": {"priority": priority}} if priority is not None else None
    once = types.HttpOptions(extra_body=extra)
    inline = [{"key": key, "request": request} for key, request in lines]
    if embed:
        client.batches.create_embeddings(
            model="gemini-embedding-001",
            src=convert.embed_source(None, inline),
            config=types.CreateEmbeddingsBatchJobConfig(
                display_name=display_name, http_options=once
            ),
        )
    else:
        client.batches.create(
            model="gemini-2.5-flash",
            src=convert.generate_source(None, inline),
            config=types.CreateBatchJobConfig(display_name=display_name, http_options=once),
        )
    assert len(bodies) == 1
    return bodies[0]


def longest_display_name(user: str) -> str:
    """The longest display_name apply sends for a job of this user text (its tag at its
    longest: a sharded, re-run attempt with a high number)."""
    tag = IdentityTag("r" * 63, "a" * 12, 99999, shard=9999, rerun=999, project="0" * 8)
    return tag.display_name(user)


GENERATE: dict[str, list[tuple[str, Request]]] = {
    "camelCase": [
        ("k1", {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}),
        (
            "k2",
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"temperature": 0.5, "maxOutputTokens": 64, "topK": 3},
                "systemInstruction": {"parts": [{"text": "be brief"}]},
            },
        ),
    ],
    "snake_case": [
        (
            "a-much-longer-key-0001",
            {
                "contents": [{"parts": [{"text": "y"}]}],
                "generation_config": {"max_output_tokens": 8, "response_mime_type": "text/plain"},
                "system_instruction": {"parts": [{"text": "s"}]},
                "safety_settings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
                ],
            },
        )
    ],
    "non-ASCII text and keys": [
        ("ключ-1", {"contents": [{"parts": [{"text": "語 héllo 🎉"}]}]}),
    ],
    "integers in float fields": [
        (
            "k",
            {
                "contents": [{"parts": [{"text": "t"}]}],
                "generationConfig": {"temperature": 1, "topP": 1, "presencePenalty": 0},
            },
        )
    ],
    "inline data and a response schema": [
        (
            "img",
            {
                "contents": [
                    {"parts": [{"inlineData": {"mimeType": "image/png", "data": "aGVsbG8="}}]}
                ],
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {
                        "type": "object",
                        "properties": {"field_one": {"type": "string"}},
                    },
                },
            },
        )
    ],
    "tools and a model": [
        (
            "fn",
            {
                "model": "gemini-2.5-flash",
                "contents": [{"parts": [{"text": "call it"}]}],
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "lookup",
                                "description": "find a thing",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"q": {"type": "string"}},
                                },
                            }
                        ]
                    }
                ],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            },
        )
    ],
}

EMBED: dict[str, list[tuple[str, Request]]] = {
    "shared options": [
        (f"e{i}", {"content": {"parts": [{"text": f"text {i} é"}]}, "taskType": "RETRIEVAL_QUERY"})
        for i in range(3)
    ],
    "snake_case": [
        (f"e{i}", {"content": {"parts": [{"text": "x"}]}, "output_dimensionality": 256})
        for i in range(2)
    ],
}

SLACK_PER_REQUEST = 24
"""What the count may exceed the wire by, per request (spellings the SDK shortens)."""
SLACK_DISPLAY_NAME = 7 * COUNTED_DISPLAY_NAME_MAX
"""And once: the display name counted at its longest (the user's text escaped, and a tag)."""


def _check(
    lines: list[tuple[str, Request]], *, embed: bool, user: str, priority: int | None
) -> tuple[int, int]:
    sent = sent_body(lines, embed=embed, display_name=longest_display_name(user), priority=priority)
    counted = inline_body_bytes(
        lines, embed=embed, display_name=user, priority=priority, media_mime={}
    )
    assert counted >= len(sent)
    assert counted - len(sent) <= SLACK_PER_REQUEST * len(lines) + SLACK_DISPLAY_NAME
    return counted, len(sent)


@pytest.mark.parametrize("case", sorted(GENERATE))
@pytest.mark.parametrize("priority", [None, -12345])
def test_counted_generate_body_is_never_below_what_the_sdk_sends(
    case: str, priority: int | None
) -> None:
    _check(GENERATE[case], embed=False, user="my job", priority=priority)


@pytest.mark.parametrize("case", sorted(EMBED))
@pytest.mark.filterwarnings("ignore:batches.create_embeddings")
def test_counted_embed_body_is_never_below_what_the_sdk_sends(case: str) -> None:
    _check(EMBED[case], embed=True, user="embeddings", priority=None)


def test_a_long_non_ascii_display_name_is_counted_as_escaped() -> None:
    user = "名前" * 80  # trimmed to fit with the tag, then each character sent as \\uXXXX
    _check(GENERATE["camelCase"], embed=False, user=user, priority=None)


def test_the_counted_display_name_bound_is_the_tags() -> None:
    assert COUNTED_DISPLAY_NAME_MAX == DISPLAY_NAME_MAX


def test_many_tiny_requests_are_counted_with_their_wrappers() -> None:
    """The failure this count exists for: requests whose JSON alone is far under the limit
    make a body over it, because each carries its key and wrapper. Both the SDK's body and the
    count grow by fixed bytes per request of one shape (measured on a thousand), so at 250,000
    the count is at least the wire's."""
    request: Request = {"contents": [{"parts": [{"text": "x"}]}]}

    def lines(n: int) -> list[tuple[str, Request]]:
        return [(f"request-{100_000 + i}", request) for i in range(n)]  # keys of one length

    def wire(n: int) -> int:
        return len(sent_body(lines(n), embed=False, display_name="t", priority=None))

    def count(n: int) -> int:
        return inline_body_bytes(
            lines(n), embed=False, display_name="t", priority=None, media_mime={}
        )

    sent_per_request = (wire(1001) - wire(1)) / 1000
    counted_per_request = (count(1001) - count(1)) / 1000
    assert counted_per_request >= sent_per_request
    many = 250_000
    assert len(json.dumps([request] * many)) < LIMIT_BYTES  # what validate measured before
    assert wire(1) + sent_per_request * (many - 1) > 20 * 1024 * 1024  # the service refuses
    assert count(1) + counted_per_request * (many - 1) >= LIMIT_BYTES  # validate refuses now


def test_a_local_media_part_counts_as_the_file_uri_that_replaces_it() -> None:
    media: Mapping[str, str] = {"images/cat.png": "image/png"}
    request: Request = {"contents": [{"parts": [{"fileData": {"path": "images/cat.png"}}]}]}
    counted = inline_body_bytes(
        [("k", request)], embed=False, display_name="m", priority=None, media_mime=media
    )
    uri = "https://generativelanguage.googleapis.com/v1beta/files/" + "a" * 40
    substituted: Request = {
        "contents": [{"parts": [{"fileData": {"fileUri": uri, "mimeType": "image/png"}}]}]
    }
    sent = sent_body([("k", substituted)], embed=False, display_name="m", priority=None)
    assert counted >= len(sent)
