"""Small builders shared by the state suites (imported as tests.integration.state.helpers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.config import Project, ProjectConfig
from reconciler.state.backend import StateBackend
from reconciler.state.document import JobAttempt, JobState, ResourceRecord

OpenBackend = Callable[..., StateBackend]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def project_for(root: Path, setting: str) -> Project:
    return Project(root=root, config=ProjectConfig(state=setting), config_path=None)


def record(name: str, spec_hash: str = "a" * 64, *, attempts: int = 0) -> ResourceRecord:
    """A resource record with `attempts` succeeded job attempts."""
    return ResourceRecord(
        name=name,
        spec_hash=spec_hash,
        attempts=tuple(
            JobAttempt(
                number=i + 1,
                tag=f"[rc:{name}@{spec_hash[:12]}:{i + 1}]",
                spec_hash=spec_hash,
                job_name=f"batches/{name}-{i + 1}",
                state=JobState.SUCCEEDED,
                intent_at=T0,
            )
            for i in range(attempts)
        ),
    )
