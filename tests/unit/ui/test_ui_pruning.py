"""What the view keeps under `.reconciler/` does not grow without end: indexes of files gone or
changed are deleted, other attempts' fetched results go when the state no longer names their
job, and both stay within a size bound, least recently used first."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reconciler.ui.files import ATTEMPT_OUTPUTS_DIR, output_path, prune_outputs
from reconciler.ui.lineindex import INDEX_DIR, KeyIndex, LineIndex, prune_indexes


def _results(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"key": f"k{i}", "response": {}}) + "\n" for i in range(n)))
    return path


def _indexed(data: Path, root: Path) -> LineIndex:
    """`data` with its line index complete and its key index built, as pages leave them."""
    index = LineIndex.open(data, root)
    assert index.count > 0
    assert KeyIndex(index).line_of("k0") == 0
    return index


def _names(root: Path) -> set[str]:
    return {entry.name for entry in (root / INDEX_DIR).iterdir()}


def test_indexes_of_files_gone_or_changed_are_pruned_and_the_others_kept(tmp_path: Path) -> None:
    gone = _indexed(_results(tmp_path / "gone.jsonl", 5), tmp_path)
    changed_data = _results(tmp_path / "changed.jsonl", 5)
    changed = _indexed(changed_data, tmp_path)
    kept = _indexed(_results(tmp_path / "kept.jsonl", 5), tmp_path)
    (tmp_path / "gone.jsonl").unlink()
    _results(changed_data, 7)  # apply renamed a new results copy over the old one
    unknown = tmp_path / INDEX_DIR / f"{'0' * 64}.lines"  # an index that names no file
    unknown.write_bytes(b"rc-lines-1\n")
    before = _names(tmp_path)

    removed = prune_indexes(tmp_path)

    stems = {index.index.name.split(".")[0] for index in (gone, changed)}
    assert {path.name for path in removed} == {
        name for name in before if name.split(".")[0] in stems
    } | {unknown.name}
    assert _names(tmp_path) == {n for n in before if n.startswith(kept.index.name.split(".")[0])}
    assert LineIndex.open(tmp_path / "kept.jsonl", tmp_path).complete


def test_past_the_size_bound_the_least_recently_used_indexes_go_first(tmp_path: Path) -> None:
    indexes = [_indexed(_results(tmp_path / f"r{i}.jsonl", 200), tmp_path) for i in range(3)]
    for age, index in zip((300, 200, 100), indexes, strict=True):
        source = index.index.with_suffix(".source")
        os.utime(source, (source.stat().st_atime - age, source.stat().st_mtime - age))
    LineIndex.open(indexes[0].data, tmp_path)  # opened again: now the most recently used
    one = sum(p.stat().st_size for p in (tmp_path / INDEX_DIR).iterdir()) // 3

    prune_indexes(tmp_path, max_bytes=2 * one + one // 2)

    left = {name.split(".")[0] for name in _names(tmp_path)}
    assert left == {indexes[0].index.name.split(".")[0], indexes[2].index.name.split(".")[0]}


def test_a_temporary_file_of_a_build_under_way_is_kept_and_a_crashed_ones_removed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / INDEX_DIR
    folder.mkdir(parents=True)
    fresh, old = folder / ".tmp-fresh", folder / ".tmp-old"
    fresh.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (0, 0))

    assert prune_indexes(tmp_path) == [old]
    assert fresh.exists()


def test_fetched_results_of_jobs_the_state_no_longer_names_are_removed(tmp_path: Path) -> None:
    for job in ("batches/kept", "batches/forgotten"):
        output_path(tmp_path, job).parent.mkdir(parents=True, exist_ok=True)
        output_path(tmp_path, job).write_text("{}\n")
    leftover = tmp_path / ATTEMPT_OUTPUTS_DIR / "batches-cut.partial"
    leftover.write_text("{")

    removed = prune_outputs(tmp_path, ["batches/kept", "batches/other"])

    assert sorted(path.name for path in removed) == [
        "batches-cut.partial",
        "batches-forgotten.jsonl",
    ]
    assert output_path(tmp_path, "batches/kept").exists()


def test_fetched_results_past_the_size_bound_go_oldest_first_but_the_newest_stays(
    tmp_path: Path,
) -> None:
    jobs = [f"batches/j{i}" for i in range(3)]
    for age, job in zip((300, 200, 100), jobs, strict=True):
        path = output_path(tmp_path, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (path.stat().st_mtime - age, path.stat().st_mtime - age))

    prune_outputs(tmp_path, jobs, max_bytes=1500)
    assert [output_path(tmp_path, job).exists() for job in jobs] == [False, False, True]

    prune_outputs(tmp_path, jobs, max_bytes=10)
    assert output_path(tmp_path, jobs[2]).exists(), "the one just fetched is never dropped"
