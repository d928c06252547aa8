"""One writer for the state during apply: concurrent steps update it one at a time.

Apply saves the state after every step that changes the world (DESIGN §7). Steps of different
resources run concurrently, so their read-modify-writes go through this store, which applies
each change to the latest document and writes it with the serial it was read at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reconciler.state.backend import StateBackend
from reconciler.state.document import ResourceRecord, State


class StateStore:
    """The state as of the last write, and the only way apply changes it."""

    def __init__(self, backend: StateBackend, state: State) -> None:
        self._backend = backend
        self._state = state
        self._lock = asyncio.Lock()

    @property
    def state(self) -> State:
        return self._state

    async def update(self, change: Callable[[State], State]) -> State:
        """Apply `change` to the latest state and persist it before returning."""
        async with self._lock:
            updated = change(self._state)
            if updated == self._state:
                return self._state
            self._state = await asyncio.to_thread(self._backend.write, updated, self._state.serial)
            return self._state

    async def update_record(
        self, name: str, change: Callable[[ResourceRecord], ResourceRecord]
    ) -> State:
        """Change one resource's record (which must exist) and persist."""

        def apply(state: State) -> State:
            return state.with_resource(change(state.resources[name]))

        return await self.update(apply)

    async def forget(self, name: str) -> State:
        return await self.update(lambda state: state.without_resource(name))
