"""The Files API quota during one apply: what the service stores, what this run uploads and
deletes, and whether the next upload fits (`limits.storage_bytes`, `limits.file_bytes`).

The service keeps at most 20 GB of files per project and 2 GB per file, and refuses an upload
past either. Apply counts before it uploads: the files the service listed when the run started,
plus what this run has uploaded or is uploading, less what it deleted (apply.cleanup). An upload
that does not fit waits, as a create past the job cap does (apply.capacity), while jobs of this
project still run or this run uploaded (their collection frees their inputs); with nothing left
to free it fails its resource with the numbers. Files of other tools count too, as far as the service lists them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from reconciler.errors import ReconcilerError, TransientServiceError
from reconciler.live.service import BatchService
from reconciler.live.snapshot import Live
from reconciler.plan.limits import ServiceLimits
from reconciler.state.document import State


def size_text(n_bytes: int) -> str:
    """Bytes in the units the service's limits are published in (decimal GB, MB, kB)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


class StorageFull(TransientServiceError):
    """An upload would pass the project's Files storage: it waits for deletions (429-like)."""


@dataclass(slots=True)
class StorageLedger:
    """This run's count of the project's Files storage (one per apply, in ApplyContext)."""

    listed: int | None = None
    """Bytes of the files the service listed (None: not listed yet this run)."""
    uploaded: int = 0
    """Bytes this run uploaded, or is uploading now (reserved before the upload starts)."""
    deleted: int = 0
    """Bytes this run deleted (apply.cleanup)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def used(self) -> int:
        return max(0, (self.listed or 0) + self.uploaded - self.deleted)

    def observe(self, live: Live) -> None:
        """Take the service's listed files as the baseline, once per run: later listings would
        count this run's own uploads twice."""
        if self.listed is None and live.files_listed:
            self.listed = sum(f.size_bytes for f in live.files.values())

    def freed(self, n_bytes: int) -> None:
        self.deleted += max(0, n_bytes)

    @asynccontextmanager
    async def reserve(
        self,
        adapter: BatchService,
        limits: ServiceLimits,
        state: State,
        live: Live,
        *,
        n_bytes: int,
        frees: bool = True,
    ) -> AsyncIterator[None]:
        """Hold `n_bytes` of storage for the upload inside the block (released if it fails).

        `frees`: collected inputs are deleted (`cleanup.inputs`), so storage frees as this
        run's jobs, or the project's jobs still running, are collected.

        Raises:
            StorageFull: it does not fit now, but will once those jobs are collected.
            ReconcilerError: it cannot fit: larger than a file may be, or nothing would free.
        """
        if adapter.endpoint_kind == "vertex":
            # Vertex stages inputs in Cloud Storage: there is no Files API quota to count.
            yield
            return
        if n_bytes > limits.file_bytes:
            raise ReconcilerError(
                f"an input file of {size_text(n_bytes)} is larger than the Files "
                f"API takes ({size_text(limits.file_bytes)} per file)",
                hint="shard the input (`spec.shards.max_bytes`), or set `limits.file_bytes`",
            )
        async with self.lock:
            self.observe(live)
            if self.listed is None:
                self.observe(await adapter.snapshot(include_files=True))
            if self.used + n_bytes > limits.storage_bytes:
                frees = frees and (self.uploaded > 0 or _running(state))
                raise _full(frees, self.used, n_bytes, limits.storage_bytes)
            self.uploaded += n_bytes
        try:
            yield
        except BaseException:
            self.uploaded -= n_bytes
            raise


def _running(state: State) -> bool:
    """Whether a job of this project may still end (and so free its input)."""
    return any(
        a.job_name is not None and not a.state.is_terminal
        for record in state.resources.values()
        for a in record.attempts
    )


def _full(frees: bool, used: int, n_bytes: int, limit: int) -> ReconcilerError:
    message = (
        f"uploading {size_text(n_bytes)} would pass the project's Files storage "
        f"({size_text(used)} in use of {size_text(limit)}, limits.storage_bytes)"
    )
    if frees:
        return StorageFull(
            message + "; it waits for collected jobs' inputs to be deleted",
            call="files.upload",
            status_code=429,
        )
    return ReconcilerError(
        message,
        hint="delete files at the service (files older than 48 h expire on their own), or "
        "raise `limits.storage_bytes` if the project has more",
    )
