"""While a job runs, the emulator's `batchStats` advance as the service's do: requests done at
an even pace from the end of its pending time to its deadline, then the exact counts."""

from __future__ import annotations

from reconciler.emulator import wire
from reconciler.emulator.rows import BatchRow
from tests.emulator.conftest import batch_row


def _stats(batch: BatchRow, at: float) -> dict[str, str]:
    stats: dict[str, str] = wire.batch_json(batch, at)["batchStats"]
    return stats


def test_a_pending_job_has_every_request_pending() -> None:
    assert _stats(batch_row(), 1002.0) == {"requestCount": "400", "pendingRequestCount": "400"}


def test_a_running_job_works_through_its_requests_at_an_even_pace() -> None:
    # Running from 1004 to 1020: a quarter of the way at 1008.
    assert _stats(batch_row(), 1008.0) == {
        "requestCount": "400",
        "successfulRequestCount": "100",
        "pendingRequestCount": "300",
    }


def test_requests_fail_at_the_jobs_error_rate_as_they_are_done() -> None:
    assert _stats(batch_row(request_error_rate=0.1), 1012.0) == {
        "requestCount": "400",
        "successfulRequestCount": "180",
        "failedRequestCount": "20",
        "pendingRequestCount": "200",
    }
