"""An error answer to a request the adapter sent itself is read as the SDK reads one.

`boundary.raise_for_status` raises `ErrorAnswer` where the SDK raises its `APIError` (which
`plan` never imports), so both must hold the same code, status, message and details, say the
same text, and come out of the boundary as the same `ServiceError` with the same retry
decisions. The SDK is the spec: each answer is read by both from the same httpx2 response.
"""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from google.genai import errors as genai_errors

from reconciler.errors import ServiceError
from reconciler.live.boundary import (
    Boundary,
    ErrorAnswer,
    create_ambiguous,
    create_resendable,
    is_answer,
    is_transient,
    raise_for_status,
    retry_delay_of,
    status_of,
)

KEY = "AIza-unit-secret"

ANSWERS: list[tuple[int, bytes]] = [
    (404, b'{"error": {"code": 404, "message": "model not found", "status": "NOT_FOUND"}}'),
    (400, b'{"error": {"code": 400, "message": "bad key ' + KEY.encode() + b'"}}'),
    (
        429,
        b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED", '
        b'"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", '
        b'"retryDelay": "7s"}]}}',
    ),
    (503, b'{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}'),
    (500, b"<html>gateway</html>"),
    (502, b""),
    (403, b'[{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}]'),
    (409, b'{"message": "top level", "status": "ABORTED", "error": {"status": "inner"}}'),
    (400, b'{"error": "a string", "status": "KEPT?"}'),
    (408, b"[1, 2]"),
    (204, b""),
    (201, b'{"name": "created"}'),
]


def _raised(read: object, status: int, body: bytes) -> BaseException:
    async def main() -> BaseException:
        response = httpx2.Response(
            status, content=body, request=httpx2.Request("GET", "http://service.test/v1beta/x")
        )
        try:
            await read(response)  # type: ignore[operator]
        except Exception as exc:
            return exc
        raise AssertionError("no error raised")

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "body"), ANSWERS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(ANSWERS)]
)
def test_an_error_answer_is_read_and_mapped_as_the_sdk_reads_it(status: int, body: bytes) -> None:
    sdk = _raised(genai_errors.APIError.raise_for_async_response, status, body)
    ours = _raised(raise_for_status, status, body)
    assert isinstance(sdk, genai_errors.APIError)
    assert isinstance(ours, ErrorAnswer)
    assert (ours.code, ours.status, ours.message, ours.details) == (
        sdk.code,
        sdk.status,
        sdk.message,
        sdk.details,
    )
    assert str(ours) == str(sdk)
    for predicate in (
        is_answer,
        is_transient,
        status_of,
        retry_delay_of,
        create_resendable,
        create_ambiguous,
    ):
        assert predicate(ours) == predicate(sdk), predicate.__name__
    boundary = Boundary((KEY,))
    mapped: list[ServiceError] = [boundary.error(e, "models.get") for e in (ours, sdk)]
    assert type(mapped[0]) is type(mapped[1])
    assert str(mapped[0]) == str(mapped[1])
    assert mapped[0].status_code == mapped[1].status_code
    assert KEY not in str(mapped[0])


def test_a_200_answer_is_no_error() -> None:
    async def main() -> None:
        await raise_for_status(httpx2.Response(200, json={"ok": True}))

    asyncio.run(main())
