"""The parse and scan caches under `.reconciler/cache/` against what a checkout (or another run)
can put there: a symlink to `/dev/zero`, a FIFO, a huge file, a racing writer, an input on a
file system whose clock the cache did not read. Never stale content, never a hang, a crash or
memory that grows with the planted file."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config import Project
from reconciler.manifests.jsonl import scan_jsonl
from reconciler.manifests.model import Task
from reconciler.manifests.parse_cache import CACHE_FILE as PARSE_CACHE
from reconciler.manifests.scan_cache import CACHE_FILE as SCAN_CACHE
from reconciler.manifests.scan_cache import ScanCache
from tests.unit.manifests.test_scan_cache import settle, write_project

pytestmark = pytest.mark.hostile_input

MEMORY_LIMIT = 3 << 30
"""Address space the CLI run gets: reading a planted /dev/zero would pass it in seconds."""


def _symlink_to_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge_sparse_file(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(4 << 30)


def _symlink_to_a_folder(path: Path) -> None:
    path.symlink_to(path.parent)


PLANTED: dict[str, Callable[[Path], None]] = {
    "a symlink to /dev/zero": _symlink_to_dev_zero,
    "a FIFO": _fifo,
    "a 4 GiB sparse file": _huge_sparse_file,
    "a symlink to a folder": _symlink_to_a_folder,
}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("planted", PLANTED)
@pytest.mark.parametrize("cache", [PARSE_CACHE, SCAN_CACHE], ids=["parse cache", "scan cache"])
def test_a_cache_file_planted_by_a_checkout_is_ignored_and_replaced(
    tmp_project: Project, user_cache: Path, cache: Path, planted: str
) -> None:
    write_project(tmp_project)
    path = tmp_project.root / cache
    path.parent.mkdir(parents=True, exist_ok=True)
    PLANTED[planted](path)

    ran = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate"],
        cwd=tmp_project.root,
        env={**os.environ, "XDG_CACHE_HOME": str(user_cache)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
    )

    assert ran.returncode == 0, ran.stderr
    assert "4 manifest(s) valid" in ran.stdout
    assert "Traceback" not in ran.stderr and "Internal error" not in ran.stderr
    assert path.is_symlink() or path.is_fifo() or path.stat().st_size < 1 << 20


def test_two_runs_racing_to_write_the_scan_cache_leave_one_whole_file_of_true_entries(
    tmp_project: Project, user_cache: Path
) -> None:
    """Each run reads, scans and writes its own temporary, renamed into place: whichever
    rename comes last, the file is whole and every entry in it is what its file holds."""
    write_project(tmp_project)
    inputs = sorted((tmp_project.root / "data").iterdir())
    first, second = ScanCache(tmp_project.root), ScanCache(tmp_project.root)
    for run, names in ((first, inputs[:2]), (second, inputs[1:])):
        for path in names:
            stat = run.lookup(path, Task.GENERATE, True)
            assert isinstance(stat, tuple)
            run.keep(
                path, Task.GENERATE, True, stat, scan_jsonl(path, Task.GENERATE, tmp_project.root)
            )
    second.save()
    first.save()  # the slower run's rename lands last

    reader = ScanCache(tmp_project.root)
    found = {path.name: reader.lookup(path, Task.GENERATE, True) for path in inputs}
    for path in inputs[:2]:  # the last writer's entries, each what its file holds
        kept = found[path.name]
        assert not isinstance(kept, tuple) and kept is not None
        truth = scan_jsonl(path, Task.GENERATE, tmp_project.root).digest
        assert kept.digest.sha256 == truth.sha256
        assert dict(kept.digest.key_digests) == dict(truth.key_digests)
    assert all(isinstance(found[path.name], tuple) for path in inputs[2:])  # scanned again


def _other_file_system(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to put an input on")
    return shm


def test_an_input_on_a_file_system_whose_clock_was_not_read_is_scanned_every_time(
    tmp_project: Project, user_cache: Path, tmp_path: Path
) -> None:
    """The racily-clean rule compares an input's timestamps with the clock of the cache's file
    system; another file system (a mount in the project, NFS stamped by its server) has its
    own clock, so a scan of an input there is never kept."""
    write_project(tmp_project)
    elsewhere = _other_file_system(tmp_path) / f"reconciler-test-{os.getpid()}.jsonl"
    elsewhere.write_bytes((tmp_project.root / "data" / "in0.jsonl").read_bytes())
    os.utime(elsewhere, ns=(0, 0))  # old by any clock: only the device keeps it out
    try:
        settle(tmp_project)
        writer = ScanCache(tmp_project.root)
        local = tmp_project.root / "data" / "in1.jsonl"
        for path in (elsewhere, local):
            stat = writer.lookup(path, Task.GENERATE, True)
            assert isinstance(stat, tuple)
            writer.keep(
                path, Task.GENERATE, True, stat, scan_jsonl(path, Task.GENERATE, tmp_project.root)
            )
        writer.save()

        reader = ScanCache(tmp_project.root)
        assert isinstance(reader.lookup(elsewhere, Task.GENERATE, True), tuple)  # scanned again
        assert not isinstance(reader.lookup(local, Task.GENERATE, True), tuple)  # kept
    finally:
        elsewhere.unlink()
