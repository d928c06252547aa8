"""An unchanged small input is not scanned again across runs (manifests/scan_cache.py), and a
kept scan is never stale: an edit that keeps the file's size and mtime is still seen, a file
written as the run reads it is read again next time, and a cache this user did not write (one
that came with a checkout), or a damaged one, is ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.config import Project
from reconciler.manifests import loader
from reconciler.manifests.loader import load
from reconciler.manifests.model import Task
from reconciler.manifests.scan_cache import CACHE_FILE, ScanCache

INPUTS = 4


def write_project(project: Project) -> None:
    for i in range(INPUTS):
        lines = [{"key": f"k{j}", "request": {"contents": [{"parts": [{"text": f"{i}{j}"}]}]}}
                 for j in range(2)]  # fmt: skip
        (project.root / "data" / f"in{i}.jsonl").write_text(
            "".join(json.dumps(line) + "\n" for line in lines)
        )
        (project.root / "manifests" / f"m{i}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: BatchJob\n"
            f"metadata:\n  name: m{i}\nspec:\n  model: gemini-2.5-flash\n"
            f"  source:\n    file: data/in{i}.jsonl\n  output: results/m{i}.jsonl\n"
        )
    settle(project)


def settle(project: Project) -> None:
    """Wait until the file system's clock is past every input's last change (a probe file's
    mtime, the clock the cache reads): the inputs are then older than any later read of them,
    as inputs that were not just written are."""
    newest = max(
        max(s.st_mtime_ns, s.st_ctime_ns)
        for s in (p.stat() for p in (project.root / "data").iterdir())
    )
    probe = project.root / ".probe"
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_mtime_ns > newest:
            probe.unlink()
            return


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The inputs scanned, in order (the real scan still runs)."""
    scanned: list[str] = []
    real = loader.scan_jsonl  # type: ignore[attr-defined]

    def counting(path: Path, *args: object, **kwargs: object) -> object:
        scanned.append(path.name)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "scan_jsonl", counting)
    return scanned


def test_an_unchanged_input_is_scanned_once_across_runs(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_project)
    scanned = count_scans(monkeypatch)
    first = load(tmp_project)
    assert len(scanned) == INPUTS
    second = load(tmp_project)
    assert len(scanned) == INPUTS  # none again
    assert second.desired == first.desired and second.desired is not None
    digests = second.desired.resources["m1"].source.key_digests
    assert dict(digests) == dict(first.desired.resources["m1"].source.key_digests)
    assert len(digests) == 2


def test_an_input_edited_in_place_with_its_size_and_mtime_restored_is_scanned_again(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctime cannot be set back: the edit is seen however the file's mtime is dressed up."""
    write_project(tmp_project)
    before = load(tmp_project).desired
    assert before is not None
    source = tmp_project.root / "data" / "in2.jsonl"
    stat = source.stat()
    text = source.read_text()
    edited = text.replace('"20"', '"2x"')
    assert len(edited) == len(text) and edited != text
    source.write_text(edited)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size
    assert source.stat().st_mtime_ns == stat.st_mtime_ns
    scanned = count_scans(monkeypatch)
    after = load(tmp_project).desired
    assert scanned == ["in2.jsonl"]
    assert after is not None
    assert after.resources["m2"].source.sha256 != before.resources["m2"].source.sha256
    assert after.resources["m1"].source == before.resources["m1"].source


def test_an_input_whose_timestamps_are_not_older_than_the_read_is_scanned_every_time(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Git's "racily clean" rule: a file changed at the file system's time of the read (or
    dated in the future) could change again within the same timestamp unseen, so it is not
    kept."""
    write_project(tmp_project)
    future = tmp_project.root / "data" / "in0.jsonl"
    ahead = future.stat().st_mtime_ns + 3600 * 10**9
    os.utime(future, ns=(ahead, ahead))
    scanned = count_scans(monkeypatch)
    load(tmp_project)
    load(tmp_project)
    assert scanned.count("in0.jsonl") == 2
    assert scanned.count("in1.jsonl") == 1


def test_an_input_with_a_problem_is_scanned_every_time_and_its_diagnostic_repeated(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_project)
    bad = tmp_project.root / "data" / "in3.jsonl"
    bad.write_text(bad.read_text() + "not json\n")
    settle(tmp_project)
    scanned = count_scans(monkeypatch)
    first = [str(d) for d in load(tmp_project).diagnostics]
    second = [str(d) for d in load(tmp_project).diagnostics]
    assert scanned.count("in3.jsonl") == 2
    assert first == second and any("data/in3.jsonl:3" in line for line in first)


def test_validate_and_plan_keep_their_own_scans(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`validate` scans without per-key digests; the plan after it still gets them."""
    write_project(tmp_project)
    assert load(tmp_project, key_digests=False).desired is not None
    desired = load(tmp_project).desired
    assert desired is not None
    assert len(desired.resources["m0"].source.key_digests) == 2
    assert desired.resources["m0"].source.keys_sha256 != ""
    scanned = count_scans(monkeypatch)
    load(tmp_project, key_digests=False)
    load(tmp_project)
    assert scanned == []


def _forge(project: Project) -> None:
    """A cache entry, sealed by this user, that says `in1.jsonl` holds other requests."""
    source = project.root / "data" / "in1.jsonl"
    writer = ScanCache(project.root)
    stat = writer.lookup(source.resolve(), Task.GENERATE, True)
    assert isinstance(stat, tuple)
    other = project.root / "data" / "in0.jsonl"
    from reconciler.manifests.jsonl import scan_jsonl

    writer.keep(
        source.resolve(), Task.GENERATE, True, stat, scan_jsonl(other, Task.GENERATE, project.root)
    )
    writer.save()


def test_a_cache_this_user_did_not_write_is_not_trusted(
    tmp_project: Project, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache committed to the repository must not make apply send other requests."""
    write_project(tmp_project)
    _forge(tmp_project)
    as_writer = load(tmp_project).desired
    assert as_writer is not None  # its writer trusts it (so the entry is well-formed) ...
    sources = as_writer.resources
    assert sources["m1"].source.sha256 == sources["m0"].source.sha256
    # ... another user, finding it in a checkout, does not.
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache.parent / "another-user"))
    result = load(tmp_project).desired
    assert result is not None
    assert result.resources["m1"].source.sha256 != result.resources["m0"].source.sha256


@pytest.mark.hostile_input
def test_a_truncated_bit_flipped_or_foreign_cache_is_ignored(
    tmp_project: Project, user_cache: Path
) -> None:
    write_project(tmp_project)
    expected = load(tmp_project).desired
    whole = (tmp_project.root / CACHE_FILE).read_bytes()
    flipped = bytearray(whole)
    flipped[-1] ^= 0x01
    from reconciler.manifests.parse_cache import CACHE_FILE as PARSED

    parsed = (tmp_project.root / PARSED).read_bytes()
    for damaged in (whole[: len(whole) // 2], bytes(flipped), b"", whole[:31], parsed):
        (tmp_project.root / CACHE_FILE).write_bytes(damaged)
        assert load(tmp_project).desired == expected


@pytest.mark.hostile_input
def test_a_planted_symlink_never_makes_the_scan_cache_write_outside_the_project(
    tmp_project: Project, user_cache: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_project.root / ".reconciler").symlink_to(elsewhere)
    write_project(tmp_project)
    assert load(tmp_project).desired is not None
    assert not any(p.is_file() for p in elsewhere.rglob("*"))


def test_temporary_files_a_killed_run_left_are_removed_by_the_next_write(
    tmp_project: Project, user_cache: Path
) -> None:
    """A cache file is written to a temporary beside it and renamed; a run killed in between
    leaves the temporary, named after its process. The next run removes those of processes
    that are gone, never one a running process is still writing."""
    write_project(tmp_project)
    load(tmp_project)
    folder = (tmp_project.root / CACHE_FILE).parent
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    gone = folder / f".{Path(CACHE_FILE).name}.{int(finished.stdout)}-0123456789abcdef.tmp"
    running = folder / f".{Path(CACHE_FILE).name}.{os.getppid()}-fedcba9876543210.tmp"
    gone.write_bytes(b"half a cache")
    running.write_bytes(b"being written")
    (tmp_project.root / "data" / "in0.jsonl").write_text("")  # a scan to keep: a new write
    settle(tmp_project)

    load(tmp_project)

    assert not gone.exists()
    assert running.read_bytes() == b"being written"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp") and p != running]
