"""apply/outputs.py, files.py, summary.py, merging.py: durable result copies, their summary,
merges by key, image extraction."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.apply import summary
from reconciler.apply.files import atomic_file, iter_jsonl_lines, temp_beside
from reconciler.apply.merging import merge_results
from reconciler.apply.outputs import (
    image_file_name,
    keep_downloaded,
    resolve_output,
    write_results,
)
from reconciler.errors import ConfigError, ReconcilerError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _ok(key: str, text: str = "fine") -> dict[str, Any]:
    return {"key": key, "response": {"candidates": [{"content": {"parts": [{"text": text}]}}]}}


def _bad(key: str) -> dict[str, Any]:
    return {"key": key, "error": {"code": 13, "message": "internal"}}


def _raw(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_write_results_keeps_raw_lines_and_counts_failures(tmp_path: Path) -> None:
    data = _raw(_ok("a"), _bad("b"), {"key": "c", "error": None, "response": {}}, _ok("d"))
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    target = resolve_output("results/out.jsonl", tmp_path)
    written = write_results(iter_jsonl_lines(source), target, tmp_path / "staging")
    out = (tmp_path / "results/out.jsonl").read_bytes()
    assert out == data
    assert (written.succeeded, written.failed, written.failed_keys) == (3, 1, ("b",))
    assert written.sha256 == hashlib.sha256(out).hexdigest() and written.bytes == len(out)


def test_atomic_write_leaves_no_partial_file_on_error(tmp_path: Path) -> None:
    target = resolve_output("results/out.jsonl", tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results/out.jsonl").write_text("previous\n")

    def lines() -> Iterator[dict[str, Any]]:
        yield _ok("a")
        raise OSError("disk gone")

    with pytest.raises(OSError):
        write_results(lines(), target, tmp_path / "staging")
    assert (tmp_path / "results/out.jsonl").read_text() == "previous\n"
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["out.jsonl"]


def test_atomic_file_replaces_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "f.txt"
    with atomic_file(final) as handle:
        handle.write(b"one")
    with pytest.raises(RuntimeError), atomic_file(final) as handle:
        handle.write(b"two")
        raise RuntimeError("stop")
    assert final.read_bytes() == b"one" and len(list(tmp_path.iterdir())) == 1


def test_images_of_a_folder_output_become_files(tmp_path: Path) -> None:
    data = base64.b64encode(PNG).decode()
    line = {
        "key": "img/1",
        "response": {
            "candidates": [
                {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]}}
            ]
        },
    }
    target = resolve_output("results/images/", tmp_path)
    written = write_results([_raw(line).rstrip(b"\n")], target, tmp_path / "staging")
    assert written.location == "results/images/results.jsonl"
    name = image_file_name("img/1", 0, ".png")
    assert name.startswith("img_1-")
    assert (tmp_path / "results/images" / name).read_bytes() == PNG
    [out] = [json.loads(x) for x in (tmp_path / "results/images/results.jsonl").read_text().split()]
    part = out["response"]["candidates"][0]["content"]["parts"][0]
    assert part == {"file": {"path": name, "mimeType": "image/png", "bytes": len(PNG)}}


def test_merge_swaps_replacements_in_previous_order_and_appends_new_keys(tmp_path: Path) -> None:
    previous = _raw(_ok("a"), _bad("b"), _ok("c"), _ok("gone")).splitlines()
    merged = list(
        merge_results(
            previous,
            [_raw(_ok("b", "retried")).rstrip(), _ok("z")],
            tmp_path / "scratch",
            keep=lambda key: key != "gone",
        )
    )
    assert [json.loads(m)["key"] for m in merged] == ["a", "b", "c", "z"]
    assert json.loads(merged[1]) == _ok("b", "retried")
    assert merged[0] == previous[0]  # kept byte for byte
    assert list((tmp_path / "scratch").iterdir()) == []  # the spill file is gone


def test_merge_refuses_a_previous_line_that_is_not_json(tmp_path: Path) -> None:
    with pytest.raises(ReconcilerError, match="not JSON"):
        list(merge_results([b"{broken"], [], tmp_path))


def test_keep_downloaded_makes_the_download_the_output_and_summarises_it(tmp_path: Path) -> None:
    target = resolve_output("results/out.jsonl", tmp_path)
    assert target.local_path is not None
    data = _raw(_ok("a"), _bad("b"), _ok("c", 'says "error" in text')) + b"\n"
    downloaded = temp_beside(target.local_path)
    downloaded.write_bytes(data)
    written = keep_downloaded(downloaded, target, hashlib.sha256(data).hexdigest(), len(data))
    assert (tmp_path / "results/out.jsonl").read_bytes() == data
    assert not downloaded.exists()
    assert (written.succeeded, written.failed, written.failed_keys) == (2, 1, ("b",))


def test_keep_downloaded_adds_a_missing_final_line_break(tmp_path: Path) -> None:
    target = resolve_output("out.jsonl", tmp_path)
    assert target.local_path is not None
    data = _raw(_ok("a")).rstrip(b"\n")
    downloaded = temp_beside(target.local_path)
    downloaded.write_bytes(data)
    written = keep_downloaded(downloaded, target, hashlib.sha256(data).hexdigest(), len(data))
    out = (tmp_path / "out.jsonl").read_bytes()
    assert out == data + b"\n"
    assert written.sha256 == hashlib.sha256(out).hexdigest() and written.bytes == len(out)


def test_keep_downloaded_refuses_a_file_that_is_not_json_lines(tmp_path: Path) -> None:
    target = resolve_output("out.jsonl", tmp_path)
    assert target.local_path is not None
    downloaded = temp_beside(target.local_path)
    downloaded.write_bytes(b'{"key": "a"}\nnot json\n')
    with pytest.raises(ReconcilerError, match="not JSON Lines"):
        keep_downloaded(downloaded, target, "0" * 64, 22)
    assert not (tmp_path / "out.jsonl").exists()


def test_output_outside_the_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        resolve_output("../escape.jsonl", tmp_path)


def _kept(tmp_path: Path, data: bytes) -> tuple[int, int, tuple[str, ...]]:
    target = resolve_output("out.jsonl", tmp_path)
    assert target.local_path is not None
    downloaded = temp_beside(target.local_path)
    downloaded.write_bytes(data)
    written = keep_downloaded(downloaded, target, hashlib.sha256(data).hexdigest(), len(data))
    return written.succeeded, written.failed, written.failed_keys


def test_summary_reads_error_and_status_only_at_the_top_level(tmp_path: Path) -> None:
    data = _raw(
        _ok("a", 'the "error" was mine; "status": fine'),
        _bad("b"),
        {"key": "c", "status": {"code": 4, "message": "deadline"}},
        {"key": "d", "response": {"status": "ok", "error": None}},
        {"key": "e", "error": None, "response": {}},
        _ok("f"),
    )
    assert _kept(tmp_path, data) == (4, 2, ("b", "c"))


def test_summary_counts_the_same_with_blank_lines_and_crlf(tmp_path: Path) -> None:
    data = b"\n" + _raw(_ok("a"), _bad("b")) + b"\n\n" + _raw(_ok("c")).replace(b"\n", b"\r\n")
    assert _kept(tmp_path, data) == (2, 1, ("b",))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ok", "bad", "status", "mention", "null-error"]),
            st.sampled_from(["", "\n"]),
        ),
        max_size=40,
    )
)
def test_summary_agrees_with_a_full_decode_of_every_line(
    lines: list[tuple[str, str]],
) -> None:
    shapes = {
        "ok": lambda k: _ok(k),
        "bad": lambda k: _bad(k),
        "status": lambda k: {"key": k, "status": {"code": 4}},
        "mention": lambda k: _ok(k, '"error": "status"'),
        "null-error": lambda k: {"key": k, "error": None, "status": None, "response": {}},
    }
    data = b"".join(
        json.dumps(shapes[shape](f"k{i}")).encode() + b"\n" + blank.encode()
        for i, (shape, blank) in enumerate(lines)
    )
    decoded = [json.loads(line) for line in data.splitlines() if line.strip()]
    failed = [
        d["key"] for d in decoded if d.get("error") is not None or d.get("status") is not None
    ]
    with tempfile.TemporaryDirectory() as tmp:
        assert _kept(Path(tmp), data) == (len(decoded) - len(failed), len(failed), tuple(failed))


@pytest.mark.parametrize("second_process", [True, False])
def test_a_large_results_file_is_summarised_the_same_split_in_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_process: bool
) -> None:
    monkeypatch.setattr(summary, "PARALLEL_SUMMARY_MIN_BYTES", 1)
    monkeypatch.setattr(summary, "second_process_pays", lambda: second_process)
    data = _raw(*(_bad(f"k{i}") if i % 7 == 3 else _ok(f"k{i}") for i in range(200)))
    failed = tuple(f"k{i}" for i in range(200) if i % 7 == 3)
    assert _kept(tmp_path, data) == (200 - len(failed), len(failed), failed)


def test_image_file_names_are_injective_bounded_and_portable() -> None:
    keys = ["a/b", "a_b", "a?b", "x" * 300, "ünïcode key", ".hidden", "", "CON", "a b"]
    names = [image_file_name(key, 0, ".png") for key in keys]
    assert len(set(names)) == len(keys)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*-[0-9a-f]{12}\.png", name), name
        assert len(name) <= 60
    assert image_file_name("a/b", 2, ".jpg").endswith("-2.jpg")
    assert image_file_name("a/b", 0, ".png") == image_file_name("a/b", 0, ".png")
