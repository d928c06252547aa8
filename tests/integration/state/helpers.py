"""Small builders shared by the state suites (imported as tests.integration.state.helpers)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.clock import SystemClock
from reconciler.config import Project, ProjectConfig
from reconciler.state import codec
from reconciler.state.backend import StateBackend
from reconciler.state.document import JobAttempt, JobState, ResourceRecord, State
from reconciler.state.local import LocalBackend
from reconciler.state.stored_form import DETAILS_BLOB, BlobSource

OpenBackend = Callable[..., StateBackend]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def local(path: Path) -> LocalBackend:
    """A local backend on the state file `path`, its new states of lineage "lin"."""
    return LocalBackend(
        path,
        clock=SystemClock(),
        lineage_factory=lambda: "lin",
        sleep=time.sleep,
        rng=random.Random(0),
    )


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


def file_blobs(state_path: Path) -> BlobSource:
    """The details blobs beside a local state file (`blobs/applied/`), as decoding reads them."""
    directory = state_path.parent / "blobs" / DETAILS_BLOB

    def found(addresses: object) -> dict[str, bytes]:
        assert isinstance(addresses, set | frozenset | list | tuple)
        return {a: (directory / a).read_bytes() for a in addresses if (directory / a).exists()}

    return found


def decode_file(path: Path) -> State:
    """The state a local file (and the blobs beside it) holds, without a backend."""
    return codec.decode(path.read_bytes(), source=str(path), blobs=file_blobs(path))


def write_file(path: Path, state: State) -> None:
    """Write `state` as a local file by hand, with the details blobs it refers to."""
    directory = path.parent / "blobs" / DETAILS_BLOB
    directory.mkdir(parents=True, exist_ok=True)
    for address, blob in codec.state_blobs(state).items():
        (directory / address).write_bytes(blob.data)
    path.write_bytes(codec.encode(state))
