"""apply/summary.py: the results summary reads the file through one reused buffer.

A tiny buffer puts lines across every boundary and one line beyond the buffer's size.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reconciler.apply import summary
from reconciler.apply.files import temp_beside
from reconciler.apply.outputs import keep_downloaded, resolve_output
from reconciler.state.document import TokenUsage


@pytest.mark.parametrize("block", [1, 7, 16, 1 << 20])
def test_summary_is_the_same_whatever_the_buffer_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(summary, "_BLOCK", block)  # the buffer holds 8 blocks
    lines = []
    for i in range(200):
        if i % 7 == 3:
            lines.append({"key": f"k{i}", "error": {"code": 13, "message": "internal"}})
        elif i % 11 == 5:
            lines.append({"key": f"k{i}", "status": {"code": 5}})
        elif i % 13 == 0:
            lines.append({"key": f"k{i}", "error": None, "response": {"text": "x" * 500}})
        else:
            lines.append({"key": f"k{i}", "response": {"text": "answer " * (i % 9)}})
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines) + b"\n"
    data = data.rstrip(b"\n")  # and the last line without its line break
    target = resolve_output("out.jsonl", tmp_path)
    assert target.local_path is not None
    downloaded = temp_beside(target.local_path)
    downloaded.write_bytes(data)

    written = keep_downloaded(downloaded, target, hashlib.sha256(data).hexdigest(), len(data))

    failed = [f"k{i}" for i in range(200) if i % 7 == 3 or (i % 7 != 3 and i % 11 == 5)]
    assert (written.succeeded, written.failed) == (200 - len(failed), len(failed))
    assert written.failed_keys == tuple(failed)
    assert (tmp_path / "out.jsonl").read_bytes() == data + b"\n"


@pytest.mark.parametrize("block", [1, 16, 1 << 20])
def test_summary_sums_the_usage_the_successful_responses_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(summary, "_BLOCK", block)
    usage = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 4,
        "thoughtsTokenCount": 7,
        "cachedContentTokenCount": 3,
        "toolUsePromptTokenCount": 2,
        "totalTokenCount": 23,
    }
    lines = [
        {"key": "a", "response": {"candidates": [], "usageMetadata": usage}},
        {"key": "b", "response": {"usageMetadata": {"promptTokenCount": 5}}},
        {"key": "c", "response": {"embedding": {"values": [0.1]}, "tokenCount": "6"}},
        {"key": "d", "error": {"code": 13, "message": "internal"}},
        {"key": "e", "response": "not the documented shape: counted, no usage"},
    ]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    target = resolve_output("out.jsonl", tmp_path)
    assert target.local_path is not None
    downloaded = temp_beside(target.local_path)
    downloaded.write_bytes(data)

    written = keep_downloaded(downloaded, target, hashlib.sha256(data).hexdigest(), len(data))

    assert (written.succeeded, written.failed) == (4, 1)
    assert written.usage.token_usage() == TokenUsage(
        prompt=21, output=4, thinking=7, cached=3, tool_use_prompt=2, responses=3
    )
