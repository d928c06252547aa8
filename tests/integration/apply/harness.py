"""A project on disk against the in-process emulator, and one ApplyContext per run.

Each stage function is called directly with an action the real planner made against the
emulator's live jobs; the adapter is the real one (the SDK over HTTP), the state a LocalBackend,
time a FakeClock. Nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reconciler.apply.context import ApplyContext, ApplyOptions
from reconciler.apply.events import CollectingReporter
from reconciler.apply.store import StateStore
from reconciler.clock import FakeClock
from reconciler.config import PollSettings, Project, ProjectConfig
from reconciler.emulator import EmulatorHandle
from reconciler.live.endpoint import Endpoint, EndpointKind
from reconciler.live.gemini import AdapterSettings, GeminiAdapter, build_client
from reconciler.live.snapshot import Live
from reconciler.manifests.loader import load_desired
from reconciler.plan.actions import Action, ActionKind, Plan
from reconciler.plan.planner import make_plan
from reconciler.state.document import State
from reconciler.state.local import LocalBackend
from reconciler.state.request_keys import load_key_digests

T = TypeVar("T")

API_KEY = "AIzaSy-stage-tests-0123456789"
FAST = AdapterSettings(
    retry_attempts=2,
    retry_initial_delay=0.01,
    retry_max_delay=0.02,
    retry_jitter=0.0,
    request_timeout=10.0,
    transfer_attempts=2,
)


def text_request(text: str) -> dict[str, Any]:
    return {"contents": [{"parts": [{"text": text}]}]}


@dataclass
class Stages:
    """One project against one emulator; `run` opens a fresh adapter and state store."""

    root: Path
    emulator: EmulatorHandle
    clock: FakeClock = field(default_factory=FakeClock)
    reporter: CollectingReporter = field(default_factory=CollectingReporter)
    options: ApplyOptions = field(default_factory=lambda: ApplyOptions(wait=False))

    def __post_init__(self) -> None:
        self.backend = LocalBackend(
            self.root / "state" / "state.json",
            clock=self.clock,
            lineage_factory=lambda: "lineage-stage-tests",
            sleep=time.sleep,
            rng=random.Random(0),
        )
        self.project = Project(
            root=self.root,
            config=ProjectConfig(poll=PollSettings(initial_seconds=0.2, max_seconds=0.5)),
            config_path=None,
        )

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def jsonl(self, relative: str, keys: list[str]) -> Path:
        lines = [{"key": key, "request": text_request(f"say {key}")} for key in keys]
        return self.write(relative, "".join(json.dumps(line) + "\n" for line in lines))

    def manifest(self, name: str, spec: str) -> None:
        self.write(
            f"manifests/{name}.yaml",
            f"apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: {name}\nspec:\n{spec}",
        )

    def remove_manifest(self, name: str) -> None:
        (self.root / "manifests" / f"{name}.yaml").unlink()

    @property
    def state(self) -> State:
        return self.backend.read()

    def run(self, body: Callable[[ApplyContext], Awaitable[T]]) -> T:
        """Run `body` with a context over the current manifests and state."""

        async def main() -> T:
            endpoint = Endpoint(EndpointKind.URL, self.emulator.base_url, API_KEY, "v1beta")
            adapter = GeminiAdapter(
                build_client(endpoint, FAST), clock=self.clock, settings=FAST, secrets=(API_KEY,)
            )
            context = ApplyContext(
                project=self.project,
                desired=load_desired(self.project),
                adapter=adapter,
                store=StateStore(self.backend, self.backend.read()),
                clock=self.clock,
                reporter=self.reporter,
                options=self.options,
                rng=random.Random(0),
            )
            try:
                return await body(context)
            finally:
                # What a stage handed off (a collect's cleanup) ends before the client closes.
                await context.background.drain()
                await adapter.aclose()

        return asyncio.run(main())


async def plan_now(context: ApplyContext, *, include_files: bool = False) -> tuple[Live, Plan]:
    """The live jobs and the real planner's plan against them, as apply makes it."""
    live = await context.adapter.snapshot(include_files=include_files)
    state = context.store.state
    plan = make_plan(
        context.desired,
        state,
        live,
        created_at=context.clock.now(),
        previous_key_digests=load_key_digests(context.store.backend, state),
    )
    return live, plan


def only(plan: Plan, kind: ActionKind, resource: str) -> Action:
    """The plan's action for `resource`, which must be of `kind`."""
    actions = [a for a in plan.actions if a.resource == resource]
    assert [a.kind for a in actions] == [kind], plan.actions
    return actions[0]


async def wait_settled(context: ApplyContext, timeout: float = 15.0) -> Live:
    """Poll the emulator in real time until none of its jobs is pending or running."""
    deadline = time.monotonic() + timeout
    while True:
        live = await context.adapter.snapshot(include_files=False)
        if all(job.state.is_terminal for job in live.jobs.values()):
            return live
        assert time.monotonic() < deadline, "jobs still running"
        await asyncio.sleep(0.05)


def result_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
