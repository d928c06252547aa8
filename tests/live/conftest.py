"""The live suite's world: a throwaway project, an endpoint (the real API or the emulator), the
CLI in a subprocess, a cost gate before anything runs, and a sweep that deletes every job and
file the project made.

`RECONCILER_LIVE_ENDPOINT=gemini` (what `make test-live` sets) runs against the real Gemini API
with the key from GEMINI_API_KEY; anything else, including unset, runs against a local emulator,
so the default test run exercises the same code and CI never spends money.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.clock import SystemClock
from reconciler.emulator import running_emulator
from reconciler.live.endpoint import resolve_endpoint
from reconciler.live.gemini import connect
from reconciler.live.tags import parse_tag, project_token

LIVE_BUDGET_USD = 0.05
"""The most the whole suite may be estimated to cost; above it the suite refuses to start."""


def live_endpoint() -> str:
    return "gemini" if os.environ.get("RECONCILER_LIVE_ENDPOINT") == "gemini" else "emulator"


@dataclass
class LiveProject:
    root: Path
    endpoint: str
    """`gemini`, or the URL of the emulator this suite started."""
    project_id: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def real(self) -> bool:
        return self.endpoint == "gemini"

    def write(self, relative: str, content: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", "-C", str(self.root), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        return result

    def ok(self, *args: str, timeout: float = 600) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"reconciler {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "state" / "reconciler.state.json").read_text())


def _environment(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"RECONCILER_ENDPOINT": endpoint, "NO_COLOR": "1"})
    if endpoint != "gemini":
        # An emulator needs no key; never hand it a real one.
        env.pop("GEMINI_API_KEY", None)
        env.pop("GOOGLE_API_KEY", None)
    return env


@pytest.fixture
def live_project(tmp_path: Path) -> Iterator[LiveProject]:
    """A project with a unique `project:` id, so the sweep can find everything it made."""
    project_id = f"live-{secrets.token_hex(4)}"
    if live_endpoint() == "gemini":
        if not os.environ.get("GEMINI_API_KEY"):
            pytest.skip("the live suite needs GEMINI_API_KEY (make test-live)")
        project = LiveProject(tmp_path / "project", "gemini", project_id, _environment("gemini"))
        yield from _swept(project)
        return
    with running_emulator(tmp_path / "emulator", job_seconds=0.5) as emulator:
        url = str(emulator.base_url)
        project = LiveProject(tmp_path / "project", url, project_id, _environment(url))
        yield from _swept(project)


def _swept(project: LiveProject) -> Iterator[LiveProject]:
    project.root.mkdir(parents=True)
    poll = "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n" if not project.real else ""
    project.write(
        "reconciler.yaml",
        f"project: {project.project_id}\nmanifests: manifests\n"
        f"state: state/reconciler.state.json\n{poll}"
        f"guardrails:\n  max_estimated_cost_usd: {LIVE_BUDGET_USD}\n",
    )
    try:
        yield project
    finally:
        leftovers = asyncio.run(sweep(project))
    assert leftovers == [], f"the sweep could not delete: {leftovers}"


def _names(document: Any, prefix: str) -> set[str]:
    """Every string in a JSON document that names a service object (`files/...`)."""
    text = json.dumps(document)
    return set(re.findall(rf'"({prefix}/[A-Za-z0-9_-]+)"', text))


async def sweep(project: LiveProject) -> list[str]:
    """Delete every job tagged with this project and every file its state ever named; return
    what is still there afterwards (should be nothing)."""
    state_path = project.root / "state" / "reconciler.state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    recorded_files = _names(state, "files")
    endpoint = resolve_endpoint(project.endpoint, api_version="v1beta", environ=project.env)
    adapter = connect(endpoint, clock=SystemClock())
    token = project_token(project.project_id)
    try:
        live = await adapter.snapshot(include_files=True)
        ours = [
            job
            for job in live.jobs.values()
            if (tag := parse_tag(job.display_name)) is not None and tag.project == token
        ]
        for job in ours:
            if not job.state.is_terminal:
                await adapter.cancel_job(job.name)
            await adapter.delete_job(job.name)
        outputs = {job.output_file for job in ours if job.output_file}
        deletable = {n for n in recorded_files | outputs if not _undeletable(n)}
        for name in sorted(deletable & set(live.files)):
            await adapter.delete_file(name)
        after = await adapter.snapshot(include_files=True)
    finally:
        await adapter.aclose()
    left = [job.name for job in after.jobs.values() if job.name in {j.name for j in ours}]
    left += [name for name in after.files if name in deletable]
    return sorted(left)


def _undeletable(name: str) -> bool:
    """Results files whose id is over 40 characters: the service refuses to delete them
    (python-genai #1759) and removes them itself 48 hours after they were made."""
    return len(name.removeprefix("files/")) > 40
