"""`BatchService`: the calls apply and the CLI make of a batch service, whichever it is.

`GeminiAdapter` (the Developer API, adapter.py) and `VertexAdapter` (Vertex AI, vertex.py)
both satisfy it, so apply, the planner's inputs and the commands never ask which service they
talk to. Every method returns the tool's own values (snapshot.py) and raises only
`ServiceError`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reconciler.live.settings import Task
from reconciler.live.snapshot import InlineResult, Live, LiveFile, LiveJob, LiveModel


class BatchService(Protocol):
    """What a batch service adapter answers (see `GeminiAdapter` for each call's contract)."""

    @property
    def endpoint_kind(self) -> str:
        """The endpoint kind jobs are created on (`gemini`, `vertex`), recorded per attempt."""
        ...

    async def snapshot(self, *, include_files: bool) -> Live: ...

    async def list_files(self) -> Mapping[str, LiveFile] | None: ...

    async def get_job(self, name: str) -> LiveJob | None: ...

    async def get_file(self, name: str) -> LiveFile | None: ...

    async def inline_results(self, job_name: str) -> list[InlineResult]: ...

    async def get_model(self, name: str) -> LiveModel | None: ...

    async def upload_file(
        self,
        path: Path,
        *,
        display_name: str,
        mime_type: str,
        progress: Progress | None = None,
        owner: str | None = None,
    ) -> LiveFile:
        """Upload `path`. `owner` is the uploading project's token (`tags.project_token`): a
        service that stores uploads where other projects' can share a name (Vertex's
        content-addressed staging) keeps each project's apart by it."""
        ...

    async def download_file(
        self,
        name: str,
        dest: Path,
        *,
        follower: DownloadFollower | None = None,
        progress: Progress | None = None,
    ) -> tuple[str, int]: ...

    async def delete_file(self, name: str) -> None: ...

    async def create_job(
        self,
        *,
        model: str,
        task: Task,
        display_name: str,
        file_name: str | None = None,
        inline_requests: Sequence[Mapping[str, object]] | None = None,
        batch_fields: Mapping[str, object] | None = None,
        destination: str | None = None,
    ) -> LiveJob: ...

    async def cancel_job(self, name: str) -> None: ...

    async def set_job_priority(self, name: str, task: Task, priority: int) -> bool: ...

    async def delete_job(self, name: str) -> None: ...

    async def aclose(self) -> None: ...


if TYPE_CHECKING:
    # Types only: transfer.py loads the SDK, which commands that merely name the protocol
    # (status, results, the web view) do not need.
    from reconciler.live.adapter import GeminiAdapter
    from reconciler.live.transfer import DownloadFollower, Progress
    from reconciler.live.vertex import VertexAdapter

    _gemini: type[BatchService] = GeminiAdapter
    _vertex: type[BatchService] = VertexAdapter
