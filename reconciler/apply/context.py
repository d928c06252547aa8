"""What every apply stage works with: one explicit, frozen ApplyContext per run.

The stages (create, collect, maintain, converge) are functions over this context and the live
snapshot of the round they run in; nothing is an optional field filled in later. The context
holds four mutable parts on purpose, each owned by one concern: the ApplyReport (what the run did,
appended to by every stage through `emit` and by dispatch on failure), the per-run cache of
uploaded media, the per-run count of Files storage (apply.storage), and the work handed off to
the background (apply.background: collects' cleanups), drained before the run ends.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.apply.background import Background
from reconciler.apply.events import Event, EventKind, Phase, Reporter, Transfer
from reconciler.apply.outputs import OutputTarget, resolve_output
from reconciler.apply.storage import StorageLedger
from reconciler.apply.store import StateStore
from reconciler.clock import Clock
from reconciler.config import Project
from reconciler.errors import ReconcilerError
from reconciler.live.service import BatchService
from reconciler.live.snapshot import BatchStats
from reconciler.manifests.desired import Desired, DesiredResource
from reconciler.state.document import MediaUpload

if TYPE_CHECKING:
    from reconciler.live.transfer import Progress

CRASH_HOOK_ENV = "RECONCILER_TEST_CRASH_AT"
"""Kill tests name a step here; the process SIGKILLs itself right after that step."""


def crash_point(name: str) -> None:
    """Die here, as a `kill -9` would, when the kill tests ask for it."""
    if os.environ.get(CRASH_HOOK_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    wait: bool = True
    timeout_seconds: float | None = None
    parallelism: int = 32
    prune: bool = False
    targets: tuple[str, ...] = ()
    results_retry_seconds: float = 60.0
    """How long a results file that is not downloadable yet (right after SUCCEEDED) is retried."""


@dataclass
class ApplyReport:
    """What a run did: one line per step, and the resources that failed."""

    steps: list[str] = field(default_factory=list)
    failures: dict[str, ReconcilerError] = field(default_factory=dict)
    unsettled: list[str] = field(default_factory=list)
    """Resources still running when apply stopped waiting (timeout or --no-wait)."""
    waiting: list[str] = field(default_factory=list)
    """Resources whose jobs wait for capacity (jobs, enqueued tokens, storage) for the next apply."""
    kept_files: list[str] = field(default_factory=list)
    """Service files apply could not delete after collecting (`file: why`)."""
    collected: set[tuple[str, int]] = field(default_factory=set)
    """(resource, attempt) this run collected and cleaned up after: the sweep at the end tries
    again what failed (a collect's cleanup is part of what its plan approved)."""


@dataclass(slots=True)
class MediaUploads:
    """Local media path -> the upload its requests reference in this run, uploaded (or found at
    the service) once per run, and which uploads creates and cleanups are busy with.

    The lock makes concurrent creates that share a media file upload it once, not once each,
    and cleanup deletes media under it too, so a create never picks an upload being deleted.
    `claimed` counts the creates that reference an upload and have not recorded their intents
    yet (the state cannot protect it from cleanup before that); `deleted` holds the uploads this
    run deleted, which the run's listing of the service still shows.
    """

    uploads: dict[str, MediaUpload] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    claimed: Counter[str] = field(default_factory=Counter)
    deleted: set[str] = field(default_factory=set)
    mime: dict[str, str] = field(default_factory=dict)
    """Path -> the MIME type its requests declare the upload with."""

    @property
    def uris(self) -> dict[str, tuple[str, str]]:
        """Path -> (URI, MIME type), what request lines are rewritten with."""
        return {path: (m.uri, self.mime[path]) for path, m in self.uploads.items()}

    def forget(self, file_name: str) -> None:
        """A cleanup deleted `file_name`: later creates of this run upload the content again."""
        self.deleted.add(file_name)
        for path in [p for p, m in self.uploads.items() if m.file_name == file_name]:
            del self.uploads[path]


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """One apply run's collaborators and settings, shared read-only by every stage."""

    project: Project
    desired: Desired
    adapter: BatchService
    store: StateStore
    clock: Clock
    reporter: Reporter
    options: ApplyOptions
    rng: random.Random = field(default_factory=random.Random)
    """Jitter of waits; tests pass a seeded one."""
    report: ApplyReport = field(default_factory=ApplyReport)
    media: MediaUploads = field(default_factory=MediaUploads)
    storage: StorageLedger = field(default_factory=StorageLedger)
    """This run's count of the project's Files storage (apply.storage)."""
    background: Background = field(default_factory=Background)
    """Work handed off by the stages (collects' cleanups), drained before the run ends."""

    def emit(self, kind: EventKind, resource: str | None, message: str) -> None:
        """Tell the reporter; a resource's STEP is also a line of the report."""
        if kind is EventKind.STEP and resource:
            self.report.steps.append(f"{resource}: {message}")
        self.reporter.emit(Event(kind, resource, message))

    def phase(
        self,
        resource: str,
        phase: Phase,
        message: str = "",
        *,
        transfer: Transfer | None = None,
        stats: BatchStats | None = None,
    ) -> None:
        """Tell the reporter `resource` is in `phase` (a live view's row; never a report line)."""
        self.reporter.emit(
            Event(
                EventKind.PHASE,
                resource,
                message or phase.value,
                phase=phase,
                transfer=transfer,
                stats=stats,
            )
        )

    def transfer_progress(self, resource: str, phase: Phase, what: str) -> Progress:
        """A transfer's progress callback that reports `resource` in `phase` with its bytes."""

        def progress(done: int, total: int | None) -> None:
            self.phase(resource, phase, what, transfer=Transfer(done, total))

        return progress

    def resource(self, name: str) -> DesiredResource:
        return self.desired.resources[name]

    def staging(self, name: str) -> Path:
        """The resource's scratch directory under the project (created if missing)."""
        path = self.project.path(".reconciler/staging") / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def output(self, resource: DesiredResource) -> OutputTarget:
        return resolve_output(
            resource.manifest.spec.output, self.project.root, self.project.config.output_root
        )
