"""The streamed JSONL scanner: one pass, same answers on the fast and slow paths and in parallel."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from reconciler.manifests.fast_lines import line_decoder
from reconciler.manifests.jsonl import iter_requests, scan_jsonl
from reconciler.manifests.model import Task
from reconciler.manifests.requests import check_line, request_digest


def _lines(count: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"key": f"k{i}", "request": {"contents": [{"parts": [{"text": f"t{i}"}]}]}})
        + "\n"
        for i in range(start, start + count)
    )


def test_fast_and_slow_paths_give_the_same_digest() -> None:
    line = b'{"key": "a", "request": {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"temperature": 0.2}}}'
    typed = line_decoder(Task.GENERATE).decode(line)
    plain = msgspec.json.decode(line)
    assert request_digest(typed.request) == request_digest(plain["request"])
    assert check_line(plain, Task.GENERATE) == ([], [])


def test_two_workers_find_exactly_what_one_finds(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    text = (
        _lines(3000) + "not json\n" + _lines(3000, 3000) + _lines(1, 10)
    )  # k10 repeats, far apart
    path.write_text(text)
    one = scan_jsonl(path, Task.GENERATE, tmp_path, workers=1)
    two = scan_jsonl(path, Task.GENERATE, tmp_path, workers=2)
    assert one.digest == two.digest or (
        one.digest.sha256 == two.digest.sha256
        and one.digest.keys_sha256 == two.digest.keys_sha256
        and dict(one.digest.key_digests) == dict(two.digest.key_digests)
        and one.digest.request_count == two.digest.request_count == 6001
    )
    assert [str(d) for d in one.diagnostics] == [str(d) for d in two.diagnostics]
    assert [str(d.location) for d in two.diagnostics] == ["in.jsonl:3001:5", "in.jsonl:6002:1"]
    assert two.diagnostics[1].message == "duplicate key 'k10' (first used at line 11)"


def test_duplicate_keys_straddling_the_worker_split_are_found(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(_lines(2000) + _lines(1, 5))
    scan = scan_jsonl(path, Task.GENERATE, tmp_path, workers=2)
    assert [(str(d.location), d.message) for d in scan.diagnostics] == [
        ("in.jsonl:2001:1", "duplicate key 'k5' (first used at line 6)")
    ]


def test_last_line_without_newline_blank_lines_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        _lines(2).replace("\n", "\r\n").encode() + b"\n\n" + _lines(1, 2).rstrip("\n").encode()
    )
    scan = scan_jsonl(path, Task.GENERATE, tmp_path)
    assert scan.diagnostics == ()
    assert sorted(scan.digest.key_digests) == ["k0", "k1", "k2"]


def test_a_flood_of_bad_lines_is_summarised_after_the_first_fifty(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("oops\n" * 500)
    scan = scan_jsonl(path, Task.GENERATE, tmp_path)
    assert len(scan.diagnostics) == 51
    assert scan.diagnostics[0].message == "invalid JSON: invalid character"
    assert scan.diagnostics[-1].message == "450 more problem(s) in this file not shown"


def test_embed_lines_accept_both_spellings_and_reject_generation_fields(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"key": "a", "request": {"content": {"parts": [{"text": "x"}]}, "output_dimensionality": 8}}\n'
        '{"key": "b", "request": {"content": {"parts": [{"text": "y"}]}, "outputDimensionality": 8, "taskType": "RETRIEVAL_DOCUMENT"}}\n'
        '{"key": "c", "request": {"content": {"parts": [{"text": "z"}]}, "generationConfig": {}}}\n'
        '{"key": "d", "request": {"content": {"parts": [{"text": "z"}]}, "output_dimensionality": 0}}\n'
    )
    scan = scan_jsonl(path, Task.EMBED, tmp_path)
    assert [(str(d.location), d.hint) for d in scan.diagnostics] == [
        ("in.jsonl:3:65", "embed requests take `output_dimensionality` and `task_type` directly"),
        ("in.jsonl:4:65", None),
    ]
    assert (
        scan.diagnostics[1].message
        == "request.output_dimensionality: `output_dimensionality` must be a positive integer, got 0"
    )


def test_iter_requests_streams_keys_and_request_bytes_as_written(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"key": "a", "request": {"contents": []}}\n\n{"key": "b", "request": {"x": 1}}'
    )
    assert list(iter_requests(path)) == [(1, "a", b'{"contents": []}'), (3, "b", b'{"x": 1}')]


def test_an_unreadable_input_is_a_diagnostic_not_an_exception(tmp_path: Path) -> None:
    scan = scan_jsonl(tmp_path / "missing.jsonl", Task.GENERATE, tmp_path)
    assert not scan.ok
    assert "cannot be read" in scan.diagnostics[0].message


def test_key_digests_are_spilled_and_read_only_when_asked(tmp_path: Path) -> None:
    import gc

    from reconciler.manifests.key_digests import SpilledDigests

    path = tmp_path / "in.jsonl"
    path.write_text(_lines(500))
    scan = scan_jsonl(path, Task.GENERATE, tmp_path, workers=2)
    digests = scan.digest.key_digests
    assert isinstance(digests, SpilledDigests)
    files = list(digests._paths)
    assert len(digests) == 500 and digests._raw is None  # counted without reading the files
    assert all(Path(f).is_file() for f in files)
    assert sorted(digests) == sorted(f"k{i}" for i in range(500))
    assert "k7" in digests and "nope" not in digests and len(digests["k7"]) == 16
    del digests, scan
    gc.collect()
    assert not any(Path(f).exists() for f in files)


def test_keys_sha256_ignores_line_order_and_follows_keys_and_requests(tmp_path: Path) -> None:
    def keys_sha(text: str) -> str:
        path = tmp_path / "in.jsonl"
        path.write_text(text)
        return scan_jsonl(path, Task.GENERATE, tmp_path).digest.keys_sha256

    lines = _lines(50).splitlines(keepends=True)
    base = keys_sha("".join(lines))
    assert keys_sha("".join(reversed(lines))) == base
    assert keys_sha("".join(lines).replace('"k3"', '"k3x"')) != base
    assert keys_sha("".join(lines[:-1])) != base


def test_a_hash_that_repeats_without_a_repeated_key_reports_nothing(tmp_path: Path) -> None:
    from reconciler.manifests.jsonl import _duplicate_diagnostics

    path = tmp_path / "in.jsonl"
    path.write_text(_lines(10) + _lines(1, 4))
    # As if "k2" collided with another key's hash: the re-read finds it once, so no report.
    found = _duplicate_diagnostics(path, "in.jsonl", {hash("k2"), hash("k4")})
    assert [(str(d.location), d.message) for d in found] == [
        ("in.jsonl:11:1", "duplicate key 'k4' (first used at line 5)")
    ]


def test_a_small_input_is_checked_inline_with_no_scratch_file_and_the_same_digests(
    tmp_path: Path,
) -> None:
    """Thousands of small manifests must not cost a thread and a temporary file each."""
    from reconciler.manifests.key_digests import HexDigests
    from reconciler.manifests.scratch import SCRATCH_DIR

    path = tmp_path / "in.jsonl"
    path.write_text(_lines(5))
    small = scan_jsonl(path, Task.GENERATE, tmp_path)
    assert isinstance(small.digest.key_digests, HexDigests)
    assert not (tmp_path / SCRATCH_DIR).exists()
    spilled = scan_jsonl(path, Task.GENERATE, tmp_path, workers=2)
    assert small.digest.sha256 == spilled.digest.sha256
    assert small.digest.bytes == spilled.digest.bytes == path.stat().st_size
    assert small.digest.keys_sha256 == spilled.digest.keys_sha256
    assert dict(small.digest.key_digests) == dict(spilled.digest.key_digests)


def _bounded(key: str, limit: int | None, *, snake: bool = False, media: bool = False) -> str:
    parts: list[dict[str, object]] = [{"text": key}]
    if media:  # not on the typed fast path: the slow path reads the bound
        parts.append({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    request: dict[str, object] = {"contents": [{"parts": parts}]}
    if limit is not None:
        name = "max_output_tokens" if snake else "maxOutputTokens"
        request["generation_config" if snake else "generationConfig"] = {name: limit}
    return json.dumps({"key": key, "request": request}) + "\n"


def test_the_output_bound_sums_max_output_tokens_on_both_paths(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [_bounded(f"k{i}", 100) for i in range(2000)]
    lines += [_bounded("snake", 7, snake=True), _bounded("media", 5, media=True)]
    path.write_text("".join(lines))

    for workers in (1, 2):
        scan = scan_jsonl(path, Task.GENERATE, tmp_path, workers=workers)
        assert scan.ok, scan.diagnostics
        assert scan.digest.max_output_tokens == 2000 * 100 + 7 + 5


def test_a_request_without_max_output_tokens_leaves_the_output_unbounded(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(_bounded("a", 100) + _bounded("b", None, media=True) + _bounded("c", 9))

    scan = scan_jsonl(path, Task.GENERATE, tmp_path, workers=1)

    assert scan.ok and scan.digest.max_output_tokens is None
