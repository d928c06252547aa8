"""One writer for the state during apply: concurrent steps' changes, persisted in group commits.

Apply saves the state after every step that changes the world (DESIGN §7): a step's `update`
returns only once its change is on disk (or in PostgreSQL). Steps of different resources run
concurrently, so changes queue here; whoever takes the write lock applies every queued change to
the latest document and writes them in one go (a group commit, as databases do with their log).
With 100 jobs created at once that is a handful of writes instead of hundreds, while each step
still waits for the write that contains its own change. Blobs a change refers to (a source's key
digest index) ride along: the commit stores them all, then writes the state, in one thread hop,
so the blobs are durable before any record points at them and are synced once per group.

Nearly every step changes one resource's record (`update_record`, `upsert_record`, `forget`):
a commit applies all of them to one copy of the record map and compares only the records they
touched, so a commit costs its changes plus one shallow copy, not a document copy per change
(at 10,000 resources that was half a millisecond per step, some 35 s of an apply). The store
also keeps which uploaded inputs a job that may still run reads (`input_in_use`), updated from
the touched records, so cleanup after each collect does not scan every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.errors import ReconcilerError, StateWriteLostError
from reconciler.state.backend import Blob, StateBackend
from reconciler.state.document import ResourceRecord, State

Change = Callable[[State], State]
"""A change of the whole document (any number of records, tombstones)."""
RecordChange = Callable[[ResourceRecord | None], ResourceRecord]
"""A change of one resource's record (None: it has none yet)."""


@dataclass(slots=True)
class _Queued:
    done: asyncio.Future[State]
    blobs: Sequence[Blob]
    change: Change | None = None
    """A whole-document change; else the record change below."""
    name: str = ""
    record_change: RecordChange | None = None
    """None with no `change`: forget `name` (State.without_resource)."""


@dataclass(slots=True)
class _OpenInputs:
    """Per uploaded input file, the resources with an attempt that reads it and may still run."""

    readers: dict[str, set[str]] = field(default_factory=dict)

    @staticmethod
    def of(record: ResourceRecord | None) -> set[str]:
        if record is None:
            return set()
        # Media uploads are read like inputs: never deleted under a job that may still run.
        return {
            name
            for a in record.attempts
            if not a.state.is_terminal
            for name in (a.input_file, *(m.file_name for m in a.media))
            if name
        }

    def add(self, name: str, record: ResourceRecord | None) -> None:
        for file_name in self.of(record):
            self.readers.setdefault(file_name, set()).add(name)

    def remove(self, name: str, record: ResourceRecord | None) -> None:
        for file_name in self.of(record):
            names = self.readers.get(file_name)
            if names is not None:
                names.discard(name)
                if not names:
                    del self.readers[file_name]


class StateStore:
    """The state as of the last write, and the only way apply changes it."""

    def __init__(self, backend: StateBackend, state: State) -> None:
        self._backend = backend
        self._state = state
        self._lock = asyncio.Lock()
        self._queue: list[_Queued] = []
        self._open_inputs = _OpenInputs()
        for name, record in state.resources.items():
            self._open_inputs.add(name, record)
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

    def input_in_use(self, file_name: str) -> bool:
        """Whether an attempt whose job may still run (not ended) reads `file_name`."""
        return file_name in self._open_inputs.readers

    async def update(self, change: Change, blobs: Sequence[Blob] = ()) -> State:
        """Apply `change` to the latest state; return once it (and `blobs`) is persisted.

        `blobs` are stored before the state write that contains `change`, in the same group
        commit: a change whose record refers to a blob hands the blob here rather than storing
        it on its own. Prefer `update_record`/`upsert_record` for a change of one record: a
        whole-document change costs a comparison of every record.

        Raises:
            Whatever `change` raises (other queued changes are unaffected).
            StateWriteLostError: this write failed, or an earlier one did. A lost write is
                final for the store: nothing after it could be recorded on top of it.
        """
        return await self._enqueue(_Queued(self._future(), blobs, change=change))

    async def upsert_record(
        self, name: str, change: RecordChange, blobs: Sequence[Blob] = ()
    ) -> State:
        """Set `name`'s record to `change(record)` (None: it has none yet) and persist; as
        `update` for `blobs` and errors."""
        return await self._enqueue(_Queued(self._future(), blobs, name=name, record_change=change))

    async def update_record(
        self, name: str, change: Callable[[ResourceRecord], ResourceRecord]
    ) -> State:
        """Change one resource's record (which must exist: KeyError otherwise) and persist."""

        def existing(record: ResourceRecord | None) -> ResourceRecord:
            if record is None:
                raise KeyError(name)
            return change(record)

        return await self.upsert_record(name, existing)

    async def store_identity(self) -> None:
        """Persist the state once if it was never stored, before the first thing at the service
        carries its identity (`State.identity`, the lineage when no project id is set). A run
        killed after uploading under a fresh lineage would otherwise leave objects no later run
        can tell are its own: the next read makes up another lineage (on Vertex, staged inputs
        live under the identity's folder and never expire)."""
        if self._state.serial:
            return
        async with self._lock:
            if self.lost is not None:
                raise self.lost
            if self._state.serial:
                return
            try:
                self._state = await asyncio.to_thread(self._backend.write, self._state, 0)
            except (ReconcilerError, OSError) as exc:
                self.lost = StateWriteLostError(exc)
                raise self.lost from None
            self.writes += 1

    async def forget(self, name: str) -> State:
        """Drop `name`'s record, leaving a tombstone (State.without_resource), and persist."""
        return await self._enqueue(_Queued(self._future(), (), name=name))

    @staticmethod
    def _future() -> asyncio.Future[State]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, queued: _Queued) -> State:
        if self.lost is not None:
            raise self.lost
        self._queue.append(queued)
        async with self._lock:
            if not queued.done.done():
                await self._commit()
        return await queued.done

    async def _commit(self) -> None:
        batch, self._queue = self._queue, []
        stored = self._state
        state, touched = _apply(stored, batch)
        applied = [q.done for q in batch if not q.done.done()]
        blobs = [blob for q in batch if not q.done.done() for blob in q.blobs]
        changed = _changed(stored, state, touched)
        if changed or blobs:
            try:
                self._state = await asyncio.to_thread(
                    self._persist, state if changed else None, blobs, stored
                )
            except (ReconcilerError, OSError) as exc:
                self.lost = StateWriteLostError(exc)
                for done in applied:
                    if not done.done():
                        done.set_exception(self.lost)
                return
            self.writes += bool(changed)
            self._reindex(stored, self._state, changed)
        for done in applied:
            if not done.done():  # a step cancelled meanwhile no longer waits for it
                done.set_result(self._state)

    def _reindex(self, old: State, new: State, names: Iterable[str]) -> None:
        for name in names:
            self._open_inputs.remove(name, old.resources.get(name))
            self._open_inputs.add(name, new.resources.get(name))

    def _persist(self, state: State | None, blobs: Sequence[Blob], stored: State) -> State:
        """Store `blobs`, then `state` (None: unchanged) over `stored`; the state as stored."""
        if blobs:
            self._backend.put_blobs(blobs)
        return stored if state is None else self._backend.write(state, stored.serial)


def _apply(state: State, batch: Sequence[_Queued]) -> tuple[State, set[str] | None]:
    """`state` with every queued change applied in order, and the names of the records they
    touched (None: a whole-document change ran, so any record may have changed). A change
    that raises fails its own step alone: its future holds the exception."""
    records: dict[str, ResourceRecord] | None = None  # one copy for the batch's record changes
    touched: set[str] | None = set()
    for queued in batch:
        try:
            if queued.change is not None:
                if records is not None:
                    state, records = state.model_copy(update={"resources": records}), None
                state, touched = queued.change(state), None
            elif queued.record_change is not None:
                if records is None:
                    records = dict(state.resources)
                record = queued.record_change(records.get(queued.name))
                if record.name != queued.name:
                    raise ValueError(f"a change of {queued.name} returned {record.name}'s record")
                records[queued.name] = record
                if touched is not None:
                    touched.add(queued.name)
            else:
                if records is not None:
                    state, records = state.model_copy(update={"resources": records}), None
                state = state.without_resource(queued.name)
                if touched is not None:
                    touched.add(queued.name)
        except Exception as exc:  # one step's bad change must not sink the others
            queued.done.set_exception(exc)
    if records is not None:
        state = state.model_copy(update={"resources": records})
    return state, touched


def _changed(old: State, new: State, touched: set[str] | None) -> list[str]:
    """The names of the records that differ between `old` and `new`; a change that is not a
    record's (tombstones) counts as `""`. `touched`: the only names that may differ (None:
    compare every record; unchanged records are the same objects, so that is one pass)."""
    names: Iterable[str] = touched if touched is not None else {*old.resources, *new.resources}
    changed = [n for n in names if old.resources.get(n) != new.resources.get(n)]
    if not changed and old.model_copy(update={"resources": new.resources}) != new:
        changed.append("")  # the document changed outside the records
    return sorted(changed)
