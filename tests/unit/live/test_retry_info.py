"""live/boundary.py + retry.py: the wait a service error asks for (`RetryInfo.retryDelay`)."""

from __future__ import annotations

import asyncio
import random

import pytest
from google.genai import errors as genai_errors

from reconciler.clock import FakeClock
from reconciler.live.boundary import Boundary, is_transient, retry_delay_in, retry_delay_of
from reconciler.live.retry import Retrier
from reconciler.live.settings import AdapterSettings

SETTINGS = AdapterSettings(
    retry_initial_delay=0.5, retry_max_delay=1.0, retry_jitter=0.0, retry_info_max_delay=60.0
)


def quota_body(delay: object) -> dict[str, object]:
    """A 429 body as the service sends it: a google.rpc.Status with QuotaFailure + RetryInfo."""
    return {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ],
        }
    }


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("30s", 30.0), ("1.5s", 1.5), ("0s", 0.0), ({"seconds": 2, "nanos": 500000000}, 2.5)],
)
def test_retry_delay_is_read_from_the_error_details(delay: object, seconds: float) -> None:
    assert retry_delay_in(quota_body(delay)) == seconds


@pytest.mark.parametrize(
    "body",
    [
        quota_body("soon"),
        {"error": {"code": 429, "message": "busy"}},
        {"error": {"details": "not a list"}},
        "not json",
        None,
    ],
)
def test_no_or_unreadable_retry_info_asks_for_no_particular_wait(body: object) -> None:
    assert retry_delay_in(body) is None


def test_a_429_carrying_retry_info_is_waited_out_on_the_clock() -> None:
    clock = FakeClock()
    retrier = Retrier(SETTINGS, clock, random.Random(0), Boundary(()).redact)
    error = genai_errors.APIError(429, quota_body("7s"))
    assert retry_delay_of(error) == 7.0
    tries = 0

    async def main() -> None:
        nonlocal tries
        async for attempt in retrier.calls(is_transient, 3):
            with attempt:
                tries += 1
                if tries == 1:
                    raise error

    asyncio.run(main())
    assert tries == 2
    assert clock.sleeps == [7.0]


def test_a_retry_delay_longer_than_the_cap_waits_the_cap() -> None:
    retrier = Retrier(SETTINGS, FakeClock(), random.Random(0), Boundary(()).redact)
    error = genai_errors.APIError(429, quota_body("3600s"))
    assert retrier.wait_after(1, error) == SETTINGS.retry_info_max_delay


def test_a_shorter_retry_delay_does_not_cut_the_backoff() -> None:
    retrier = Retrier(SETTINGS, FakeClock(), random.Random(0), Boundary(()).redact)
    assert retrier.wait_after(2, genai_errors.APIError(503, quota_body("0.1s"))) == 1.0
