"""manifests/jsonl.py: when a scan takes a second process."""

from __future__ import annotations

import pytest

from reconciler.manifests import jsonl

BIG = jsonl.PARALLEL_MIN_BYTES


@pytest.mark.parametrize("pays", [True, False])
def test_a_large_digesting_scan_takes_a_second_worker_when_one_pays(
    monkeypatch: pytest.MonkeyPatch, pays: bool
) -> None:
    monkeypatch.setattr(jsonl, "second_process_pays", lambda: pays)
    assert jsonl._workers(BIG, None, digests=True) == (2 if pays else 1)


def test_small_files_undigested_scans_and_explicit_requests_skip_the_sampling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never() -> bool:
        raise AssertionError("sampled")

    monkeypatch.setattr(jsonl, "second_process_pays", never)
    assert jsonl._workers(BIG - 1, None, digests=True) == 1
    assert jsonl._workers(BIG, None, digests=False) == 1
    assert jsonl._workers(BIG, 2, digests=True) == 2
