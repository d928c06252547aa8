"""The adapter's own retry loops (tenacity), with its clock and its random generator.

Every retry of the adapter happens here (the SDK client is built with one attempt, client.py):
the idempotent calls (get, list, delete, cancel) on any transient failure -- a 429 or 5xx, and
also a dropped connection or a protocol error, which the SDK's own options do not retry, but not
a host whose name does not resolve or that refuses the connection (`boundary.unreachable`: with
no network the user hears so in a second, not after the whole backoff) -- the
create call (resent only when provably not carried out), whole transfers, and the requests the
adapter sends itself. Delays come from
`AdapterSettings.retry_delay` with a draw from the injected `random.Random`, and waiting is the
injected `Clock.sleep`, so tests are exact and nothing uses the global generator. When the
service's error says how long to wait (`RetryInfo.retryDelay`), the wait is at least that long.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity

from reconciler.clock import Clock
from reconciler.live.boundary import (
    Boundary,
    create_ambiguous,
    create_resendable,
    is_answer,
    is_transient,
    mapped_failures,
    retry_delay_of,
    unreachable,
)
from reconciler.live.settings import AdapterSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _resend_create(exc: BaseException) -> bool:
    """A create is sent again when it surely made nothing, unless the host cannot be reached
    at all (no network: another try in a second fails the same way)."""
    return create_resendable(exc) and not unreachable(exc)


class Retrier:
    """Builds retry loops that wait on `clock` with jitter drawn from `rng`."""

    def __init__(
        self,
        settings: AdapterSettings,
        clock: Clock,
        rng: random.Random,
        redact: Callable[[str], str],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._rng = rng
        self._redact = redact
        self.attempts: collections.Counter[str] = collections.Counter()
        """Attempts made so far by `idempotent` and `create`, per call name: what tests read
        to see how often a failure was retried (no timing needed)."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        return self.settings.retry_delay(attempt, self._rng.random())

    def wait_after(self, attempt: int, exc: BaseException | None) -> float:
        """Seconds to wait after failed attempt `attempt`: the backoff, or the service's own
        `RetryInfo.retryDelay` when `exc` carries a longer one (at most `retry_info_max_delay`)."""
        backoff = self.delay(attempt)
        asked = retry_delay_of(exc) if exc is not None else None
        if asked is None:
            return backoff
        return max(backoff, min(asked, self.settings.retry_info_max_delay))

    def calls(
        self,
        predicate: Callable[[BaseException], bool],
        attempts: int,
        stop: Callable[[tenacity.RetryCallState], bool] | None = None,
    ) -> tenacity.AsyncRetrying:
        """Up to `attempts` tries while the failure satisfies `predicate`; the last failure is
        re-raised as it is."""
        return tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(predicate),
            stop=stop or tenacity.stop_after_attempt(max(1, attempts)),
            wait=self._wait,
            sleep=self.clock.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )

    async def idempotent(
        self, boundary: Boundary, call: str, send: Callable[[], Awaitable[T]]
    ) -> T:
        """`send()` retried on every transient failure (a dropped connection included: the
        call changes nothing when repeated), its failures mapped to ServiceErrors by
        `boundary`."""
        with boundary.mapping(call):
            return await self._retried(is_transient, call, send)

    async def create(self, boundary: Boundary, call: str, send: Callable[[], Awaitable[T]]) -> T:
        """A job-creating `send()`, resent only when the service surely refused it
        (`create_resendable`); any other failure is mapped, `ambiguous` when the job may
        exist anyway (look it up by its tag before creating it again)."""
        try:
            return await self._retried(_resend_create, call, send)
        except mapped_failures() as exc:
            raise boundary.error(exc, call, ambiguous=create_ambiguous(exc)) from exc

    async def _retried(
        self,
        predicate: Callable[[BaseException], bool],
        call: str,
        send: Callable[[], Awaitable[T]],
    ) -> T:
        """`send()` tried up to `retry_attempts` times while its failure satisfies `predicate`,
        waiting `wait_after` between tries; the last failure re-raised as it is: what `calls`
        builds, as a plain loop. Every call of the adapter runs through it, and tenacity's
        machinery cost as much CPU as a small request (benchmarks/RESULTS.md, Session 7)."""
        attempts = max(1, self.settings.retry_attempts)
        attempt = 0
        while True:
            attempt += 1
            self.attempts[call] += 1
            try:
                return await send()
            except Exception as exc:
                if attempt >= attempts or not predicate(exc):
                    raise
                logger.info(
                    "retrying after %s (attempt %d)", self._redact(type(exc).__name__), attempt
                )
                await self.clock.sleep(self.wait_after(attempt, exc))

    def transfers(self) -> tenacity.AsyncRetrying:
        """Retries of a whole transfer: `transfer_attempts` broken transfers (a connection lost
        mid-body), and a refusal before the body (429, 503: the service's answer) as often as a
        JSON call's `retry_attempts` allow for each of those -- the budget the SDK's own retry
        options gave each transfer attempt before the adapter streamed the bodies itself."""
        s = self.settings
        broken = 0

        def spent(state: tenacity.RetryCallState) -> bool:
            nonlocal broken
            exc = state.outcome.exception() if state.outcome else None
            if exc is None or not is_answer(exc):
                broken += 1
            total = max(1, s.transfer_attempts) * max(1, s.retry_attempts)
            return broken >= max(1, s.transfer_attempts) or state.attempt_number >= total

        return self.calls(is_transient, s.transfer_attempts, stop=spent)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        return self.wait_after(state.attempt_number, outcome.exception() if outcome else None)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome else None
        logger.info(
            "retrying after %s (attempt %d)",
            self._redact(type(exc).__name__ if exc else "?"),
            state.attempt_number,
        )
