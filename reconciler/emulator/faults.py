"""Fault injection and call accounting: per-call 429/500/503, dropped connections, latency.

Decisions come from one seeded `random.Random`, drawn in call order, so a test that makes the same
calls with the same seed sees the same faults. Each created job draws its own `job_seed` from a
second stream of the same seed, in creation order: the faults inside a job (which requests fail,
how inline responses are shuffled) hash that seed, never the job's id, which is random. Dropping a connection needs the socket, which ASGI
does not expose: the server's protocol class registers each connection's transport here, keyed by
the peer address that also appears in the ASGI scope as `client`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass

from reconciler.emulator.settings import SettingsHolder


class ConnectionRegistry:
    """Peer address → asyncio transport of the live connections of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: dict[tuple[str, int], asyncio.BaseTransport] = {}

    def add(self, peer: tuple[str, int] | None, transport: asyncio.BaseTransport) -> None:
        if peer is not None:
            with self._lock:
                self._transports[peer] = transport

    def discard(self, peer: tuple[str, int] | None) -> None:
        if peer is not None:
            with self._lock:
                self._transports.pop(peer, None)

    def close(self, peer: tuple[str, int] | None) -> bool:
        """Abort the connection without a response; False when it is not known here."""
        with self._lock:
            transport = self._transports.pop(peer, None) if peer is not None else None
        if transport is None:
            return False
        # abort(), not close(): no FIN after buffered data, the peer just sees the socket die.
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()
        return True


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one call before its handler runs."""

    latency: float = 0.0
    drop: bool = False
    status: int | None = None


class FaultInjector:
    """Counts calls per route and decides, from the current settings, which ones fail."""

    def __init__(self, settings: SettingsHolder) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._generation = settings.seed_generation
        self._rng = random.Random(settings.get().seed)
        self._job_rng = _job_stream(settings.get().seed)

    def _restart_if_reseeded(self, seed: int) -> None:
        """Both streams start again when `seed` is set (even to its current value)."""
        if self._settings.seed_generation != self._generation:
            self._generation = self._settings.seed_generation
            self._rng = random.Random(seed)
            self._job_rng = _job_stream(seed)

    def job_seed(self) -> int:
        """The fault seed of the next created job: the n-th job after a seed gets the same one.

        A separate stream, so creating jobs does not shift the per-call decisions of `decide`.
        """
        current = self._settings.get()
        with self._lock:
            self._restart_if_reseeded(current.seed)
            return self._job_rng.getrandbits(63)  # fits SQLite's signed 64-bit INTEGER

    def decide(self, route: str) -> Decision:
        current = self._settings.get()
        with self._lock:
            self._calls[route] += 1
            self._restart_if_reseeded(current.seed)
            draw = self._rng.random()
        # One draw per call split into bands keeps the sequence stable when a rate changes.
        threshold = current.drop_rate
        if draw < threshold:
            return Decision(current.latency_seconds, drop=True)
        for status, rate in (
            (429, current.rate_429),
            (500, current.rate_500),
            (503, current.rate_503),
        ):
            threshold += rate
            if draw < threshold:
                return Decision(current.latency_seconds, status=status)
        return Decision(current.latency_seconds)

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._calls.items()))

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()


def _job_stream(seed: int) -> random.Random:
    return random.Random(f"jobs|{seed}")


def request_fails(job_seed: int, key: str, rate: float) -> bool:
    """Whether the request `key` of the job with `job_seed` ends with a per-request error.

    A hash, not a draw: the answer is the same however often or in whatever order the job's
    results are computed, and a retry (another job, another seed) draws again.
    """
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{job_seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate
