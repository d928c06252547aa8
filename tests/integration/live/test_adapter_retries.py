"""The adapter's own retries against the emulator: idempotent calls survive dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clock import SystemClock
from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, connect
from reconciler.live.snapshot import Live

SETTINGS = AdapterSettings(
    retry_attempts=10,
    retry_initial_delay=0.005,
    retry_max_delay=0.02,
    retry_jitter=0.005,
    request_timeout=10.0,
)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator", job_seconds=0.2) as emu:
        yield emu


def test_dropped_connections_on_list_get_and_delete_are_retried(emulator: EmulatorHandle) -> None:
    async def main() -> list[Live]:
        endpoint = Endpoint(EndpointKind.URL, emulator.base_url, "key", "v1beta")
        adapter = connect(endpoint, clock=SystemClock(), settings=SETTINGS)
        try:
            job = await adapter.create_job(
                model="gemini-2.5-flash",
                task="generate",
                display_name="dropped",
                inline_requests=[
                    {"key": "a", "request": {"contents": [{"parts": [{"text": "x"}]}]}}
                ],
            )
            emulator.configure(drop_rate=0.5, seed=11)
            snapshots = [await adapter.snapshot(include_files=True) for _ in range(8)]
            for _ in range(4):
                assert await adapter.get_job(job.name) is not None
            await adapter.delete_job(job.name)
            emulator.configure(drop_rate=0.0)
            assert await adapter.get_job(job.name) is None
            return snapshots
        finally:
            await adapter.aclose()

    snapshots = asyncio.run(main())
    assert all(len(s.jobs) == 1 for s in snapshots)
    calls = emulator.calls()
    # 8 job walks + 8 file walks + 4 gets + 1 delete + 1 final get succeeded; drops made more.
    assert calls["batches.list"] > 8
