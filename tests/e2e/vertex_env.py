"""Vertex end-to-end fixtures: a real Cloud Storage emulator, the emulator's Vertex routes
reading and writing it, and git projects whose `reconciler.yaml` says `endpoint: vertex`.

Test modules import the fixtures they use by name (pytest finds them in the module)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.live.tags import parse_tag
from tests.e2e.conftest import Project, git
from tests.fixtures.gcs import BUCKET, gcs, storage_client, vertex_sdk

__all__ = ["BUCKET", "gcs"]  # the bucket and the fixture are this module's too


@pytest.fixture
def vertex_emulator(tmp_path: Path, gcs: str) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path / "emulator", job_seconds=0.6, storage_url=gcs) as handle:
        yield handle


def vertex_project(
    root: Path, emulator_url: str, gcs: str, *, project_id: str = "", extra: str = ""
) -> Project:
    """A git project on `endpoint: vertex` against the emulators (`extra`: more yaml lines)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    proj = Project(root, "vertex")
    owner = f"project: {project_id}\n" if project_id else ""
    proj.write(
        "reconciler.yaml",
        f"{owner}manifests: manifests\nstate: state/reconciler.state.json\n"
        "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n"
        "vertex:\n  project: demo\n  location: us-central1\n"
        f"  staging: gs://{BUCKET}/reconciler\n  base_url: {emulator_url}\n"
        f"  storage_url: {gcs}\n{extra}",
    )
    return proj


@pytest.fixture
def vproject(tmp_path: Path, vertex_emulator: EmulatorHandle, gcs: str) -> Project:
    return vertex_project(tmp_path / "repo", vertex_emulator.base_url, gcs)


def vertex_client(emulator: EmulatorHandle) -> Any:
    """The real SDK in Vertex mode on the emulator, as a user's own script would reach it."""
    return vertex_sdk(emulator.base_url, project="demo")


def vertex_jobs(emulator: EmulatorHandle) -> list[Any]:
    """Every batch prediction job of the emulator's Vertex project, whoever made it."""
    client = vertex_client(emulator)  # kept open while the pager fetches its pages
    jobs = list(client.batches.list())
    client.close()
    return jobs


def vertex_job_counts(emulator: EmulatorHandle) -> Counter[tuple[str, int, int | None, int]]:
    """Jobs by (resource, attempt, shard, rerun), from their identity tags."""
    found: Counter[tuple[str, int, int | None, int]] = Counter()
    for job in vertex_jobs(emulator):
        tag = parse_tag(job.display_name)
        if tag is not None:
            found[(tag.resource, tag.attempt, tag.shard, tag.rerun)] += 1
    return found


def staged(gcs: str, folder: str) -> list[str]:
    """Object names under the staging prefix's `folder` (`inputs`, `outputs`, …)."""
    bucket = storage_client(gcs).bucket(BUCKET)
    return sorted(blob.name for blob in bucket.list_blobs(prefix=f"reconciler/{folder}/"))
