"""The results viewer's indexes: a page is read by seeking to stored offsets, an index is
rebuilt when its file changes, and a search goes on from where a bounded scan stopped."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reconciler.ui.lineindex import INDEX_DIR, KeyIndex, LineIndex
from reconciler.ui.records import is_failure, text_matcher


def _results(path: Path, n: int, *, failing: frozenset[int] = frozenset()) -> Path:
    lines = []
    for i in range(n):
        body = {"error": {"code": 13}} if i in failing else {"response": {"text": f"answer {i}"}}
        lines.append(json.dumps({"key": f"k{i}", **body}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_line_index_reads_any_range_of_lines_by_their_offsets(tmp_path: Path) -> None:
    index = LineIndex.open(_results(tmp_path / "r.jsonl", 1000), tmp_path)
    assert index.count == 1000
    page = index.lines(950, 50)
    assert [n for n, _ in page] == list(range(950, 1000))
    assert json.loads(page[0][1])["key"] == "k950"
    assert json.loads(page[-1][1])["key"] == "k999"
    assert index.lines(1000, 50) == []


def test_line_index_is_kept_under_the_project_and_rebuilt_when_the_file_changes(
    tmp_path: Path,
) -> None:
    data = _results(tmp_path / "r.jsonl", 10)
    first = LineIndex.open(data, tmp_path)
    assert first.index.parent == tmp_path / INDEX_DIR
    assert LineIndex.open(data, tmp_path).index == first.index
    _results(data, 12)
    os.utime(data, ns=(1, 1))
    second = LineIndex.open(data, tmp_path)
    assert second.index != first.index
    assert second.count == 12


def test_line_index_counts_a_last_line_without_newline(tmp_path: Path) -> None:
    data = tmp_path / "r.jsonl"
    data.write_bytes(b'{"key": "a"}\n{"key": "b"}')
    index = LineIndex.open(data, tmp_path)
    assert [raw for _, raw in index.lines(0, 5)] == [b'{"key": "a"}', b'{"key": "b"}']


def test_scan_finds_matches_and_says_where_to_go_on_when_its_budget_runs_out(
    tmp_path: Path,
) -> None:
    index = LineIndex.open(
        _results(tmp_path / "r.jsonl", 100, failing=frozenset({3, 70})), tmp_path
    )
    found, next_line = index.scan(0, is_failure, limit=10, budget=2000)
    assert [n for n, _ in found] == [3]
    assert next_line is not None and 3 < next_line < 70
    rest, end = index.scan(next_line, is_failure, limit=10)
    assert [n for n, _ in rest] == [70]
    assert end is None


def test_text_search_is_case_insensitive_and_matches_json_escaped_text(tmp_path: Path) -> None:
    data = tmp_path / "r.jsonl"
    data.write_text(json.dumps({"key": "x", "response": {"text": 'He said "Hello"'}}) + "\n")
    index = LineIndex.open(data, tmp_path)
    assert index.scan(0, text_matcher('said "hello"'), 10)[0]
    assert not index.scan(0, text_matcher("goodbye"), 10)[0]


def test_key_index_finds_the_line_of_a_request_key(tmp_path: Path) -> None:
    index = LineIndex.open(_results(tmp_path / "r.jsonl", 500), tmp_path)
    keys = KeyIndex(index)
    assert keys.line_of("k321") == 321
    assert keys.line_of("missing") is None


def test_an_early_page_indexes_only_a_prefix_and_the_count_completes_it(tmp_path: Path) -> None:
    index = LineIndex.open(_results(tmp_path / "r.jsonl", 40_000), tmp_path)
    assert [n for n, _ in index.lines(100, 2)] == [100, 101]
    assert not index.complete
    assert 30_000 < index.estimated_count() < 50_000
    assert index.count == 40_000
    assert index.complete
    assert json.loads(index.lines(39_999, 5)[0][1])["key"] == "k39999"
