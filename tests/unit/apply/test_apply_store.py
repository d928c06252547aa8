"""StateStore: concurrent steps' changes are persisted in group commits, each before it returns."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.apply.store import StateStore
from reconciler.clock import FakeClock
from reconciler.state.document import ResourceRecord, State
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
