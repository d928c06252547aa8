"""One writer for the state during apply: concurrent steps' changes, persisted in group commits.

Apply saves the state after every step that changes the world (DESIGN §7): a step's `update`
returns only once its change is on disk (or in PostgreSQL). Steps of different resources run
concurrently, so changes queue here; whoever takes the write lock applies every queued change to
the latest document and writes them in one go (a group commit, as databases do with their log).
With 100 jobs created at once that is a handful of writes instead of hundreds, while each step
still waits for the write that contains its own change. Blobs a change refers to (a source's key
digest index) ride along: the commit stores them all, then writes the state, in one thread hop,
so the blobs are durable before any record points at them and are synced once per group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from reconciler.errors import ReconcilerError, StateWriteLostError
from reconciler.state.backend import Blob, StateBackend
from reconciler.state.document import ResourceRecord, State

Change = Callable[[State], State]


class StateStore:
    """The state as of the last write, and the only way apply changes it."""

    def __init__(self, backend: StateBackend, state: State) -> None:
        self._backend = backend
        self._state = state
        self._lock = asyncio.Lock()
        self._queue: list[tuple[Change, Sequence[Blob], asyncio.Future[State]]] = []
        self.writes = 0
        """How many writes reached the backend (for tests and benchmarks)."""
        self.lost: StateWriteLostError | None = None
        """Set once a write failed: every later change is refused with it (see `update`)."""

    @property
    def state(self) -> State:
        return self._state

    @property
    def backend(self) -> StateBackend:
        """The backend, for its blob side-store (digest indexes, request key lists)."""
        return self._backend

    async def update(self, change: Change, blobs: Sequence[Blob] = ()) -> State:
        """Apply `change` to the latest state; return once it (and `blobs`) is persisted.

        `blobs` are stored before the state write that contains `change`, in the same group
        commit: a change whose record refers to a blob hands the blob here rather than storing
        it on its own.

        Raises:
            Whatever `change` raises (other queued changes are unaffected).
            StateWriteLostError: this write failed, or an earlier one did. A lost write is
                final for the store: nothing after it could be recorded on top of it.
        """
        if self.lost is not None:
            raise self.lost
        done: asyncio.Future[State] = asyncio.get_running_loop().create_future()
        self._queue.append((change, blobs, done))
        async with self._lock:
            if not done.done():
                await self._commit()
        return await done

    async def _commit(self) -> None:
        batch, self._queue = self._queue, []
        state = self._state
        applied: list[asyncio.Future[State]] = []
        blobs: list[Blob] = []
        for change, change_blobs, done in batch:
            try:
                state = change(state)
            except Exception as exc:  # one step's bad change must not sink the others
                done.set_exception(exc)
                continue
            applied.append(done)
            blobs += change_blobs
        changed = state != self._state
        if changed or blobs:
            try:
                self._state = await asyncio.to_thread(
                    self._persist, state if changed else None, blobs, self._state
                )
            except (ReconcilerError, OSError) as exc:
                self.lost = StateWriteLostError(exc)
                for done in applied:
                    done.set_exception(self.lost)
                return
            self.writes += changed
        for done in applied:
            done.set_result(self._state)

    def _persist(self, state: State | None, blobs: Sequence[Blob], stored: State) -> State:
        """Store `blobs`, then `state` (None: unchanged) over `stored`; the state as stored."""
        if blobs:
            self._backend.put_blobs(blobs)
        return stored if state is None else self._backend.write(state, stored.serial)

    async def update_record(
        self, name: str, change: Callable[[ResourceRecord], ResourceRecord]
    ) -> State:
        """Change one resource's record (which must exist) and persist."""

        def apply(state: State) -> State:
            return state.with_resource(change(state.resources[name]))

        return await self.update(apply)

    async def forget(self, name: str) -> State:
        return await self.update(lambda state: state.without_resource(name))
