"""open_adapter from a Project: endpoint resolution, the embedded emulator, and its persistence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reconciler.clock import FakeClock, SystemClock
from reconciler.config import EmulatorSettings, Project, ProjectConfig
from reconciler.emulator import running_emulator
from reconciler.errors import ConfigError
from reconciler.live.gemini import AdapterSettings, open_adapter
from reconciler.state.document import JobState

SECRET = "AIzaSy-project-secret-abcdef"
FAST = AdapterSettings(retry_initial_delay=0.01, retry_max_delay=0.05, retry_jitter=0.01)
REQUEST = [{"key": "a", "request": {"contents": [{"parts": [{"text": "hi"}]}]}}]


def _project(root: Path, endpoint: str) -> Project:
    config = ProjectConfig(
        endpoint=endpoint, emulator=EmulatorSettings(data_dir="emu-data", job_seconds=0.1)
    )
    return Project(root=root, config=config, config_path=None)


def test_embedded_emulator_keeps_jobs_across_two_openings(tmp_path: Path) -> None:
    project = _project(tmp_path, "emulator")
    environ = {"GEMINI_API_KEY": SECRET}

    async def first() -> str:
        async with open_adapter(project, clock=SystemClock(), settings=FAST, environ=environ) as a:
            job = await a.create_job(
                model="gemini-2.5-flash", task="generate", display_name="p", inline_requests=REQUEST
            )
            return job.name

    async def second(name: str) -> tuple[JobState, list[str | None]]:
        async with open_adapter(project, clock=SystemClock(), settings=FAST, environ=environ) as a:
            live = await a.snapshot(include_files=False)
            assert name in live.jobs
            await asyncio.sleep(0.3)
            job = await a.get_job(name)
            assert job is not None
            return job.state, [r.key for r in await a.inline_results(name)]

    name = asyncio.run(first())
    assert (tmp_path / "emu-data").is_dir()
    state, keys = asyncio.run(second(name))
    assert state is JobState.SUCCEEDED and keys == ["a"]


def test_snapshot_is_stamped_by_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()

    async def body() -> object:
        async with open_adapter(_project(tmp_path, "emulator"), clock=clock, settings=FAST) as a:
            return (await a.snapshot(include_files=True)).observed_at

    assert asyncio.run(body()) == clock.now()


def test_url_endpoint_reaches_a_running_emulator(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "external") as emu:
        project = _project(tmp_path, emu.base_url)

        async def body() -> int:
            async with open_adapter(project, clock=SystemClock(), settings=FAST, environ={}) as a:
                return len((await a.snapshot(include_files=True)).jobs)

        assert asyncio.run(body()) == 0
        assert emu.calls() == {"batches.list": 1, "files.list": 1}


def test_gemini_endpoint_without_a_key_is_a_config_error(tmp_path: Path) -> None:
    async def body() -> None:
        async with open_adapter(_project(tmp_path, "gemini"), clock=SystemClock(), environ={}):
            raise AssertionError("unreachable")

    with pytest.raises(ConfigError) as caught:
        asyncio.run(body())
    assert caught.value.hint is not None


def test_invalid_endpoint_is_a_config_error(tmp_path: Path) -> None:
    async def body() -> None:
        async with open_adapter(_project(tmp_path, "ftp://nope"), clock=SystemClock(), environ={}):
            raise AssertionError("unreachable")

    with pytest.raises(ConfigError):
        asyncio.run(body())
