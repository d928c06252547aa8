"""live/retry.py: retry delays come from the settings and the injected random generator."""

from __future__ import annotations

import asyncio
import random

import pytest

from reconciler.clock import FakeClock
from reconciler.live.boundary import Boundary
from reconciler.live.retry import Retrier
from reconciler.live.settings import AdapterSettings

SETTINGS = AdapterSettings(retry_initial_delay=1.0, retry_max_delay=5.0, retry_jitter=0.5)


def test_delay_doubles_adds_the_drawn_jitter_and_stops_at_the_maximum() -> None:
    assert [SETTINGS.retry_delay(n, 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert SETTINGS.retry_delay(2, 0.5) == 2.25


def test_two_retriers_with_the_same_seed_wait_the_same_and_leave_the_global_generator_alone() -> (
    None
):
    random.seed(7)
    expected_global = random.random()
    random.seed(7)
    first = Retrier(SETTINGS, FakeClock(), random.Random(3), Boundary(()).redact)
    second = Retrier(SETTINGS, FakeClock(), random.Random(3), Boundary(()).redact)
    delays = [first.delay(n) for n in (1, 2, 3)]
    assert delays == [second.delay(n) for n in (1, 2, 3)]
    assert random.random() == expected_global


def test_a_retry_loop_sleeps_on_the_injected_clock() -> None:
    clock = FakeClock()
    retrier = Retrier(SETTINGS, clock, random.Random(1), Boundary(()).redact)
    expected = [SETTINGS.retry_delay(n, draw) for n, draw in zip((1, 2), _draws(1, 2), strict=True)]
    tries = 0

    async def main() -> None:
        nonlocal tries
        async for attempt in retrier.calls(lambda exc: isinstance(exc, OSError), 3):
            with attempt:
                tries += 1
                if tries < 3:
                    raise OSError("again")

    asyncio.run(main())
    assert tries == 3
    assert clock.sleeps == pytest.approx(expected)


def _draws(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(count)]
