"""StateStore: concurrent steps' changes are persisted in group commits, each before it returns."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.apply.store import RecordChange, StateStore
from reconciler.clock import FakeClock
from reconciler.state.document import JobAttempt, JobState, ResourceRecord, State
from reconciler.state.local import LocalBackend
from reconciler.state.request_keys import key_digests_blob


def _backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(
        tmp_path / "state.json",
        clock=FakeClock(),
        lineage_factory=lambda: "lineage-1",
        sleep=time.sleep,
        rng=random.Random(0),
    )


def _add(name: str) -> Callable[[State], State]:
    return lambda state: state.with_resource(ResourceRecord(name=name, spec_hash="h" * 64))


def test_concurrent_updates_are_all_persisted_in_fewer_writes(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())

    async def main() -> None:
        await asyncio.gather(*(store.update(_add(f"r{i}")) for i in range(50)))

    asyncio.run(main())

    stored = backend.read()
    assert sorted(stored.resources) == sorted(f"r{i}" for i in range(50))
    assert 1 <= store.writes < 50
    assert stored.serial == store.writes


def test_each_update_returns_after_its_own_change_is_stored(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())
    seen: list[bool] = []

    async def step(name: str) -> None:
        await store.update(_add(name))
        seen.append(name in backend.read().resources)

    async def main() -> None:
        await asyncio.gather(*(step(f"r{i}") for i in range(10)))

    asyncio.run(main())

    assert seen == [True] * 10


def test_a_failing_change_fails_alone(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())

    def broken(state: State) -> State:
        raise KeyError("no such resource")

    async def main() -> tuple[State | BaseException, ...]:
        return await asyncio.gather(
            store.update(_add("a")),
            store.update(broken),
            store.update(_add("b")),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())

    assert isinstance(outcomes[1], KeyError)
    assert sorted(backend.read().resources) == ["a", "b"]


def test_an_unchanged_state_is_not_written(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())

    asyncio.run(store.update(lambda state: state))

    assert store.writes == 0
    assert not (tmp_path / "state.json").exists()


@pytest.mark.parametrize("n", [1, 3])
def test_sequential_updates_write_once_each(tmp_path: Path, n: int) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())

    async def main() -> None:
        for i in range(n):
            await store.update(_add(f"r{i}"))

    asyncio.run(main())

    assert store.writes == n


def test_blobs_of_a_change_are_stored_before_the_state_write_that_refers_to_them(
    tmp_path: Path,
) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())
    blobs = [key_digests_blob({f"k{i}": "d" * 64}) for i in range(20)]
    present: list[bool] = []
    write = backend.write

    def checked_write(state: State, expected_serial: int) -> State:
        referred = [blobs[int(name[1:])] for name in state.resources]
        present.append(all(backend.get_blob(b.kind, b.sha256) for b in referred))
        return write(state, expected_serial)

    backend.write = checked_write  # type: ignore[method-assign]

    async def main() -> None:
        await asyncio.gather(
            *(store.update(_add(f"r{i}"), blobs=[blob]) for i, blob in enumerate(blobs))
        )

    asyncio.run(main())
    assert present and all(present)
    assert store.writes == len(present) < len(blobs)
    assert sorted(backend.read().resources) == sorted(f"r{i}" for i in range(20))


def _attempt(input_file: str, state: JobState) -> JobAttempt:
    return JobAttempt(
        number=1,
        tag="t",
        spec_hash="h" * 64,
        input_file=input_file,
        job_name=None if state is JobState.UNKNOWN else "batches/j",
        state=state,
        intent_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _reading(name: str, input_file: str, state: JobState) -> RecordChange:
    def change(record: ResourceRecord | None) -> ResourceRecord:
        base = record or ResourceRecord(name=name, spec_hash="h" * 64)
        return base.model_copy(update={"attempts": (_attempt(input_file, state),)})

    return change


def test_an_input_is_in_use_while_an_attempt_that_may_still_run_reads_it(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())

    async def main() -> list[tuple[bool, bool]]:
        seen = []
        await store.upsert_record("a", _reading("a", "files/in-a", JobState.UNKNOWN))
        await store.upsert_record("b", _reading("b", "files/shared", JobState.RUNNING))
        await store.upsert_record("c", _reading("c", "files/shared", JobState.PENDING))
        seen.append((store.input_in_use("files/in-a"), store.input_in_use("files/shared")))
        await store.upsert_record("a", _reading("a", "files/in-a", JobState.SUCCEEDED))
        await store.upsert_record("b", _reading("b", "files/shared", JobState.FAILED))
        seen.append((store.input_in_use("files/in-a"), store.input_in_use("files/shared")))
        await store.forget("c")
        seen.append((store.input_in_use("files/in-a"), store.input_in_use("files/shared")))
        return seen

    assert asyncio.run(main()) == [(True, True), (False, True), (False, False)]
    # A store opened on the saved state knows the same (indexed from the records once).
    reopened = StateStore(backend, backend.read())
    assert not reopened.input_in_use("files/shared")


def test_the_index_follows_whole_document_changes_too(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())
    record = _reading("a", "files/in", JobState.RUNNING)(None)

    asyncio.run(store.update(lambda state: state.with_resource(record)))

    assert store.input_in_use("files/in")


def test_a_change_of_one_record_compares_only_that_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit costs its changes, not the document: the records it compares (to find what
    to write) do not grow with the number of records in the state."""
    compared: list[int] = []
    original = ResourceRecord.__eq__

    def counting(self: ResourceRecord, other: object) -> bool:
        compared[-1] += 1
        return original(self, other)

    monkeypatch.setattr(ResourceRecord, "__eq__", counting)
    for size in (10, 1000):
        backend = _backend(tmp_path / str(size))
        records = {f"r{i}": ResourceRecord(name=f"r{i}", spec_hash="h" * 64) for i in range(size)}
        store = StateStore(backend, backend.read().model_copy(update={"resources": records}))
        compared.append(0)

        async def main(store: StateStore) -> None:
            await asyncio.gather(
                *(
                    store.upsert_record(f"r{i}", _reading(f"r{i}", "f", JobState.RUNNING))
                    for i in range(3)
                )
            )

        asyncio.run(main(store))
        assert all(store.state.resources[f"r{i}"].attempts for i in range(3))
    assert compared[0] == compared[1] <= 2 * 3  # the store's check, the backend's


def test_a_change_that_renames_its_record_fails_alone(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    store = StateStore(backend, backend.read())

    async def main() -> tuple[State | BaseException, ...]:
        return await asyncio.gather(
            store.upsert_record("a", lambda _: ResourceRecord(name="b", spec_hash="h" * 64)),
            store.upsert_record("c", lambda _: ResourceRecord(name="c", spec_hash="h" * 64)),
            store.update_record("missing", lambda record: record),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())

    assert isinstance(outcomes[0], ValueError)
    assert isinstance(outcomes[2], KeyError)
    assert sorted(backend.read().resources) == ["c"]


def test_a_state_never_stored_is_stored_once_before_its_identity_is_used(tmp_path: Path) -> None:
    """Uploads are filed under the state's identity (its lineage when no project id is set):
    a run killed after one must leave a state whose lineage the next run reads back, not a
    fresh one made up again."""
    counter = iter(range(100))
    backend = LocalBackend(
        tmp_path / "state.json",
        clock=FakeClock(),
        lineage_factory=lambda: f"lineage-{next(counter)}",
        sleep=time.sleep,
        rng=random.Random(0),
    )
    store = StateStore(backend, backend.read())
    assert store.state.lineage != backend.read().lineage  # never stored: made up on each read

    async def main() -> None:
        await asyncio.gather(store.store_identity(), store.store_identity())
        await store.store_identity()

    asyncio.run(main())

    assert store.writes == 1
    assert backend.read().lineage == store.state.lineage
    assert backend.read().serial == store.state.serial == 1
