"""manifests/jsonl.py: when a scan takes a second process."""

from __future__ import annotations

import pytest

from reconciler.manifests import jsonl

BIG = jsonl.PARALLEL_MIN_BYTES


@pytest.mark.parametrize(("idle", "expected"), [(2.0, 2), (1.6, 2), (1.4, 1), (0.2, 1)])
def test_a_second_worker_needs_a_core_idle_besides_this_one(
    monkeypatch: pytest.MonkeyPatch, idle: float, expected: int
) -> None:
    monkeypatch.setattr(jsonl, "_idle_cores", lambda: idle)
    monkeypatch.setattr(jsonl.os, "cpu_count", lambda: 2)
    assert jsonl._workers(BIG, None, digests=True) == expected


def test_small_files_undigested_scans_and_explicit_requests_skip_the_sampling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never() -> float:
        raise AssertionError("sampled")

    monkeypatch.setattr(jsonl, "_idle_cores", never)
    assert jsonl._workers(BIG - 1, None, digests=True) == 1
    assert jsonl._workers(BIG, None, digests=False) == 1
    assert jsonl._workers(BIG, 2, digests=True) == 2


def test_idle_cores_is_within_the_machine() -> None:
    assert 0.0 <= jsonl._idle_cores(0.01) <= (jsonl.os.cpu_count() or 1) + 0.01
