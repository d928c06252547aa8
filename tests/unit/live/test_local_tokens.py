"""live/local_tokens.py: input tokens are counted before planning only where the SDK's local
tokenizer runs offline; otherwise the plan keeps bytes/4 and says so."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler.config import Project, ProjectConfig
from reconciler.live import local_tokens
from reconciler.live.local_tokens import count_input_tokens, offline_counter
from reconciler.manifests.desired import Desired
from reconciler.manifests.loader import load_desired
from reconciler.plan.planner import make_plan
from reconciler.render.text import render_text
from reconciler.state.document import State
from tests.unit.plan.factories import T0, live


def _words(request: Mapping[str, Any]) -> int:
    """A stand-in tokenizer: one token per word of the text parts."""
    return sum(len(part["text"].split()) for c in request["contents"] for part in c["parts"])


def _project(root: Path) -> Project:
    (root / "manifests").mkdir()
    (root / "data").mkdir()
    lines = [{"key": f"k{i}", "request": {"contents": [{"parts": [{"text": "a b c"}]}]}}
             for i in range(4)]  # fmt: skip
    (root / "data/in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    head = "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: {}\nspec:\n"
    (root / "manifests/file.yaml").write_text(
        head.format("file") + "  model: gemini-2.5-flash\n  source:\n    file: data/in.jsonl\n"
        "  output: results/file.jsonl\n"
    )
    (root / "manifests/inline.yaml").write_text(
        head.format("inline") + "  model: gemini-2.5-flash\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'one two'}]}]\n"
        "  output: results/inline.jsonl\n"
    )
    (root / "manifests/other.yaml").write_text(
        head.format("other") + "  model: gemini-2.5-pro\n  source:\n    requests:\n"
        "      - contents: [{parts: [{text: 'not counted'}]}]\n"
        "  output: results/other.jsonl\n"
    )
    return Project(root=root, config=ProjectConfig(), config_path=None)


def _desired(root: Path) -> Desired:
    project = _project(root)
    return count_input_tokens(
        load_desired(project),
        project.root,
        lambda model: _words if model == "gemini-2.5-flash" else None,
    )


def test_sources_the_counter_covers_get_counted_tokens_the_others_keep_none(
    tmp_path: Path,
) -> None:
    desired = _desired(tmp_path)

    counted = {name: r.source.counted_input_tokens for name, r in desired.resources.items()}
    assert counted == {"file": 12, "inline": 2, "other": None}


def test_the_plan_uses_counted_tokens_and_says_which_estimate_it_used(tmp_path: Path) -> None:
    plan = make_plan(_desired(tmp_path), State(lineage="l"), live(), created_at=T0)

    tokens = {a.resource: (a.estimated_input_tokens, a.input_tokens_counted) for a in plan.actions}
    assert tokens["file"] == (12, True) and tokens["inline"] == (2, True)
    assert tokens["other"][1] is False
    text = render_text(plan)
    assert "counted with the SDK's local tokenizer for 2 of 3 resources" in text
    assert "~12 input tokens (counted)" in text


def test_a_large_source_keeps_the_bytes_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_tokens, "MAX_COUNTED_BYTES", 10)

    desired = _desired(tmp_path)

    assert desired.resources["file"].source.counted_input_tokens is None


def test_without_a_cached_tokenizer_model_nothing_is_counted_or_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty cache directory: the SDK would download; reconciler must not even try.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    assert offline_counter("gemini-2.5-flash") is None
    assert offline_counter("gemini-3.1-pro-preview") is None  # a Hugging Face tokenizer


def test_the_installed_sdk_keeps_the_tokenizer_names_this_relies_on() -> None:
    pytest.importorskip("sentencepiece", reason="the SDK's local tokenizer needs sentencepiece")
    from google.genai import _local_tokenizer_loader as loader

    config = loader._TOKENIZERS[loader.get_tokenizer_name("gemini-2.5-flash")]
    assert isinstance(config.model_url, str) and isinstance(config.model_hash, str)


def test_a_cached_model_counts_only_with_the_hash_the_sdk_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = b"tokenizer model bytes"
    url = "https://example.test/gemma.spiece.model"
    config = SimpleNamespace(model_url=url, model_hash=hashlib.sha256(model).hexdigest())
    loader = SimpleNamespace(_TOKENIZERS={"gemma3": config})
    cache = tmp_path / "vertexai_tokenizer_model"
    cache.mkdir()
    cached = cache / hashlib.sha1(url.encode()).hexdigest()

    assert not local_tokens._cached_model(loader, "gemma3")
    cached.write_bytes(model)
    assert local_tokens._cached_model(loader, "gemma3")
    cached.write_bytes(b"corrupt")
    assert not local_tokens._cached_model(loader, "gemma3")
    assert not local_tokens._cached_model(loader, "gemma4")
