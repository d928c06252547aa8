"""Work a stage hands off so that its parallelism slot is free for the next action: started at
once, bounded by its own limit, and awaited before the run ends (`drain`).

A collect's cleanup (apply.cleanup) runs this way: its deletes follow results that are already
durable and recorded, so no poll, download or create needs to wait for them; only the run's end
does, for the last few. A run killed before they finish leaves them to the next apply, which
finds them in its plan (`Plan.cleanup`) and finishes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Background:
    """The tasks handed off during one run (one per ApplyContext)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate: asyncio.Semaphore | None = None

    def start(self, work: Callable[[], Awaitable[None]], limit: int) -> None:
        """Run `work()` in the background, at most `limit` at a time (the first call's limit
        holds for the run). Called inside the run's event loop."""
        if self._gate is None:
            self._gate = asyncio.Semaphore(max(1, limit))
        gate = self._gate

        async def bounded() -> None:
            async with gate:
                await work()

        task = asyncio.get_running_loop().create_task(bounded())
        # Retrieved here so a run that stops before draining logs no "never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._tasks.add(task)

    async def drain(self) -> None:
        """Wait for every task started, and those they start meanwhile; then raise the first
        failure (a lost state write: the run stops as if a stage had lost it)."""
        failures: list[BaseException] = []
        while self._tasks:
            batch = list(self._tasks)
            outcomes = await asyncio.gather(*batch, return_exceptions=True)
            self._tasks.difference_update(batch)
            failures += [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
