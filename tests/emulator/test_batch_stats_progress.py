"""While a job runs, the emulator's `batchStats` advance as the service's do: requests done at
an even pace from the end of its pending time to its deadline, then the exact counts."""

from __future__ import annotations

from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.store import BatchRow


def _batch(**changes: Any) -> BatchRow:
    fields: dict[str, Any] = {
        "id": "b1",
        "kind": "generate",
        "model": "models/gemini-2.5-flash",
        "display_name": None,
        "create_time": 1000.0,
        "job_seconds": 20.0,
        "pending_seconds": 4.0,
        "expire_after": 10_000.0,
        "forced_end": None,
        "input_file": "f1",
        "inline": False,
        "request_count": 400,
        "state": None,
        "end_time": None,
        "success_count": 0,
        "failed_count": 0,
        "output_file": None,
        "request_error_rate": 0.0,
        "shuffle": False,
        "undeletable_results": True,
        "results_delay": 0.0,
        "file_ttl": 10_000.0,
    }
    fields.update(changes)
    return BatchRow(**fields)


def _stats(batch: BatchRow, at: float) -> dict[str, str]:
    stats: dict[str, str] = wire.batch_json(batch, at)["batchStats"]
    return stats


def test_a_pending_job_has_every_request_pending() -> None:
    assert _stats(_batch(), 1002.0) == {"requestCount": "400", "pendingRequestCount": "400"}


def test_a_running_job_works_through_its_requests_at_an_even_pace() -> None:
    # Running from 1004 to 1020: a quarter of the way at 1008.
    assert _stats(_batch(), 1008.0) == {
        "requestCount": "400",
        "successfulRequestCount": "100",
        "pendingRequestCount": "300",
    }


def test_requests_fail_at_the_jobs_error_rate_as_they_are_done() -> None:
    assert _stats(_batch(request_error_rate=0.1), 1012.0) == {
        "requestCount": "400",
        "successfulRequestCount": "180",
        "failedRequestCount": "20",
        "pendingRequestCount": "200",
    }
