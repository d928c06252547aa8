"""A host that cannot be reached at all fails at the first attempt, with one line naming the
host and the cause; failures worth waiting for (a dropped connection, a 503) are still retried.

The retry layer counts its attempts (`Retrier.attempts`): the tests read that count, not the
time a call took. Every request is a real one, over the adapter's own HTTP client.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clock import FakeClock
from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.errors import TransientServiceError
from reconciler.live.boundary import NETWORK_HINT, Boundary, raise_for_status
from reconciler.live.http import wide_read_client
from reconciler.live.retry import Retrier
from reconciler.live.settings import AdapterSettings

SETTINGS = AdapterSettings(retry_attempts=4)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator") as emu:
        yield emu


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


def _list(url: str) -> tuple[Retrier, BaseException | None]:
    """One idempotent `batches.list` to `url` through the retry layer; the retrier (with its
    count) and the error it ended with, if any."""
    boundary = Boundary(secrets=("key",))
    retrier = Retrier(SETTINGS, FakeClock(), random.Random(0), boundary.redact)

    async def main() -> BaseException | None:
        http = wide_read_client()

        async def send() -> None:
            response = await http.get(
                f"{url}/v1beta/batches", headers={"x-goog-api-key": "key"}, timeout=10
            )
            await raise_for_status(response)

        try:
            await retrier.idempotent(boundary, "batches.list", send)
        except TransientServiceError as exc:
            return exc
        finally:
            await http.aclose()
        return None

    return retrier, asyncio.run(main())


def test_a_refused_connection_is_tried_once_and_names_host_and_cause() -> None:
    retrier, error = _list(f"http://127.0.0.1:{_closed_port()}")

    assert retrier.attempts["batches.list"] == 1
    assert isinstance(error, TransientServiceError)
    assert error.message == "cannot reach 127.0.0.1: connection refused (ConnectError)"
    assert error.hint == NETWORK_HINT


def test_a_host_name_that_does_not_resolve_is_tried_once() -> None:
    # .invalid never resolves (RFC 2606); without a network the lookup fails the same way.
    retrier, error = _list("http://reconciler-test.invalid")

    assert retrier.attempts["batches.list"] == 1
    assert isinstance(error, TransientServiceError)
    assert error.message.startswith("cannot reach reconciler-test.invalid: name lookup failed")


def test_dropped_connections_are_still_retried_to_the_last_attempt(
    emulator: EmulatorHandle,
) -> None:
    emulator.configure(drop_rate=1.0)

    retrier, error = _list(emulator.base_url)

    assert retrier.attempts["batches.list"] == SETTINGS.retry_attempts
    assert isinstance(error, TransientServiceError)


def test_a_service_unavailable_answer_is_still_retried_until_it_passes(
    emulator: EmulatorHandle,
) -> None:
    emulator.configure(rate_503=0.5, seed=3)

    retrier, error = _list(emulator.base_url)

    assert error is None
    assert 1 < retrier.attempts["batches.list"] <= SETTINGS.retry_attempts
    assert emulator.calls()["batches.list"] == retrier.attempts["batches.list"]
