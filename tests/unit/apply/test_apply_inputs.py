"""apply/inputs.py: what one job sends — the source as is, shards, subsets, media substituted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.apply.inputs import keys_in_order, prepare_inputs, substitute_media
from reconciler.manifests.desired import DesiredResource, MediaRef
from tests.unit.plan.factories import resource

KEYS = ["k7", "k3", "k11", "k0", "k5", "k9", "k1", "k4"]


def _source(root: Path, keys: list[str], extra: dict[str, Any] | None = None) -> DesiredResource:
    lines = []
    for key in keys:
        request: dict[str, Any] = {"contents": [{"parts": [{"text": f"q {key}"}]}]}
        if extra and key in extra:
            request = extra[key]
        lines.append(json.dumps({"key": key, "request": request}) + "\n")
    path = root / "data" / "eval-summaries.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines) + "\n")  # a trailing blank line is not a request
    return resource(requests=len(keys))


def _keys(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines() if line]


def test_whole_source_is_sent_as_is_without_a_copy(tmp_path: Path) -> None:
    res = _source(tmp_path, KEYS)
    [only] = prepare_inputs(
        res, tmp_path, tmp_path / "staging", shards=1, only_keys=None, media_uris={}
    )
    assert only.file == tmp_path / "data" / "eval-summaries.jsonl"
    assert only.keys is None and only.shard is None and only.request_count == len(KEYS)
    assert not (tmp_path / "staging").exists()


def test_shards_are_contiguous_runs_that_concatenate_back_in_input_order(tmp_path: Path) -> None:
    res = _source(tmp_path, KEYS)
    inputs = prepare_inputs(
        res, tmp_path, tmp_path / "staging", shards=3, only_keys=None, media_uris={}
    )
    assert [p.shard for p in inputs] == [0, 1, 2]
    assert [p.request_count for p in inputs] == [3, 3, 2]
    sent = [key for p in inputs for key in _keys(p.file or Path())]
    assert sent == KEYS
    assert [list(p.keys or ()) for p in inputs] == [KEYS[0:3], KEYS[3:6], KEYS[6:]]
    assert all(p.bytes == (p.file or Path()).stat().st_size for p in inputs)


def test_more_shards_than_requests_makes_one_job_per_request(tmp_path: Path) -> None:
    res = _source(tmp_path, KEYS[:2])
    inputs = prepare_inputs(
        res, tmp_path, tmp_path / "staging", shards=5, only_keys=None, media_uris={}
    )
    assert [p.request_count for p in inputs] == [1, 1]


def test_subset_keeps_only_the_keys_asked_for_in_input_order(tmp_path: Path) -> None:
    res = _source(tmp_path, KEYS)
    [subset] = prepare_inputs(
        res,
        tmp_path,
        tmp_path / "staging",
        shards=1,
        only_keys=frozenset({"k4", "k3", "k9"}),
        media_uris={},
    )
    assert subset.keys == ("k3", "k9", "k4")
    assert _keys(subset.file or Path()) == ["k3", "k9", "k4"]
    original = (tmp_path / "data" / "eval-summaries.jsonl").read_bytes().splitlines()
    copied = (subset.file or Path()).read_bytes().splitlines()
    assert set(copied) <= set(original)  # lines travel byte for byte, not re-encoded


def test_subset_split_into_shards(tmp_path: Path) -> None:
    res = _source(tmp_path, KEYS)
    inputs = prepare_inputs(
        res,
        tmp_path,
        tmp_path / "staging",
        shards=2,
        only_keys=frozenset({"k7", "k0", "k1"}),
        media_uris={},
    )
    assert [p.keys for p in inputs] == [("k7", "k0"), ("k1",)]


def test_media_paths_become_uploaded_file_uris(tmp_path: Path) -> None:
    image_part = {"file_data": {"path": "data/cat.png"}}
    extra = {"k3": {"contents": [{"parts": [{"text": "describe"}, image_part]}]}}
    res = _source(tmp_path, ["k7", "k3"], extra)
    res = DesiredResource(
        name=res.name,
        manifest=res.manifest,
        location=res.location,
        source=res.source,
        media=(MediaRef("data/cat.png", "0" * 64, "image/png", 10),),
        spec_hash=res.spec_hash,
    )
    uris = {"data/cat.png": ("https://files/abc", "image/png")}
    [prepared] = prepare_inputs(
        res, tmp_path, tmp_path / "staging", shards=1, only_keys=None, media_uris=uris
    )
    lines = [json.loads(line) for line in (prepared.file or Path()).read_text().splitlines()]
    parts = lines[1]["request"]["contents"][0]["parts"]
    assert parts[1] == {"fileData": {"fileUri": "https://files/abc", "mimeType": "image/png"}}
    assert lines[0]["request"] == {"contents": [{"parts": [{"text": "q k7"}]}]}


def test_substitute_media_keeps_an_explicit_mime_type_and_other_values() -> None:
    value = {"a": [{"fileData": {"path": "x.jpg", "mime_type": "image/jpeg"}}, 3, "s"]}
    out = substitute_media(value, {"x.jpg": ("uri", "application/octet-stream")})
    assert out == {"a": [{"fileData": {"fileUri": "uri", "mimeType": "image/jpeg"}}, 3, "s"]}


def test_keys_in_order_lists_the_source_keys(tmp_path: Path) -> None:
    res = _source(tmp_path, KEYS)
    assert keys_in_order(res, tmp_path) == KEYS


def test_no_shard_file_exceeds_max_bytes_even_when_lines_vary_in_size(tmp_path: Path) -> None:
    long = {"contents": [{"parts": [{"text": "x" * 400}]}]}
    res = _source(tmp_path, KEYS, extra={"k7": long, "k3": long})
    limit = 600
    inputs = prepare_inputs(
        res,
        tmp_path,
        tmp_path / "staging",
        shards=2,
        only_keys=None,
        media_uris={},
        max_bytes=limit,
    )
    # Two shards were planned from the totals; the two long lines cannot share one.
    assert len(inputs) > 2
    assert all(p.bytes <= limit for p in inputs)
    assert [p.shard for p in inputs] == list(range(len(inputs)))
    assert [key for p in inputs for key in _keys(p.file or Path())] == KEYS


def test_whole_source_over_max_bytes_is_split_though_one_shard_was_planned(
    tmp_path: Path,
) -> None:
    res = _source(tmp_path, KEYS)
    size = (tmp_path / "data" / "eval-summaries.jsonl").stat().st_size
    inputs = prepare_inputs(
        res,
        tmp_path,
        tmp_path / "staging",
        shards=1,
        only_keys=None,
        media_uris={},
        max_bytes=size // 2,
    )
    assert len(inputs) >= 2
    assert [key for p in inputs for key in _keys(p.file or Path())] == KEYS
