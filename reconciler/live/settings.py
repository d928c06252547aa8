"""How hard the adapter retries and how long it waits: plain numbers, no SDK import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Task = Literal["generate", "embed"]

MAX_PAGE_SIZE: Final = 100
"""Largest page the Files API documents for files.list (pageSize ≤ 100); batches.list has no
documented maximum, so the same value is used. Fewer pages = fewer calls per snapshot."""


@dataclass(frozen=True, slots=True)
class AdapterSettings:
    """How hard the adapter retries and how long it waits; tests shrink the delays."""

    retry_attempts: int = 5
    """Attempts per call, the first included (the SDK's default)."""
    retry_initial_delay: float = 1.0
    """Seconds before the first retry; doubles each time, with jitter."""
    retry_max_delay: float = 30.0
    retry_jitter: float = 1.0
    """Up to this many random seconds added to each delay."""
    retry_info_max_delay: float = 300.0
    """Longest wait honoured when the service names one (`RetryInfo.retryDelay`)."""
    request_timeout: float = 120.0
    """Seconds per HTTP request (the SDK sends none by default, so a hung socket waits forever)."""
    transfer_attempts: int = 3
    """Whole-transfer attempts for uploads and downloads (each already retries its start)."""
    page_size: int = MAX_PAGE_SIZE

    def retry_delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): exponential from
        `retry_initial_delay`, plus `draw` (in [0, 1)) times `retry_jitter`, at most
        `retry_max_delay` -- what tenacity's `wait_exponential_jitter` computes, with the
        random draw passed in."""
        delay = self.retry_initial_delay * 2.0 ** (attempt - 1) + draw * self.retry_jitter
        return max(0.0, min(delay, self.retry_max_delay))
