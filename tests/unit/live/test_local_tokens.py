"""live/local_tokens.py: input tokens are counted before planning only where the SDK's local
tokenizer runs offline; otherwise the plan keeps bytes/4 and says so."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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


def test_without_a_cached_model_the_sdk_tokenizer_loader_is_not_even_imported(
    tmp_path: Path,
) -> None:
    # The loader imports requests, urllib3, protobuf and sentencepiece (0.1-0.2 s of every
    # plan and apply); with nothing in the cache it could only say "no". A fresh interpreter,
    # since other tests here import the loader.
    code = (
        "import json, sys\n"
        "from reconciler.live.local_tokens import offline_counter\n"
        "counter = offline_counter('gemini-2.5-flash')\n"
        "print(json.dumps([counter is None, sorted(m for m in sys.modules if m.startswith(("
        "'google.genai._local_tokenizer_loader', 'sentencepiece', 'requests', 'google.protobuf"
        "')))]))\n"
    )
    for cache in (tmp_path / "vertexai_tokenizer_model", None):  # an empty cache, and none
        if cache is not None:
            cache.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        assert json.loads(done.stdout) == [True, []]
        if cache is not None:
            cache.rmdir()


def test_the_installed_sdk_keeps_the_tokenizer_names_this_relies_on() -> None:
    pytest.importorskip("sentencepiece", reason="the SDK's local tokenizer needs sentencepiece")
    from google.genai import _local_tokenizer_loader as loader

    config = loader._TOKENIZERS[loader.get_tokenizer_name("gemini-2.5-flash")]
    assert isinstance(config.model_url, str) and isinstance(config.model_hash, str)


def test_a_cached_model_is_used_only_with_the_hash_the_sdk_pins(tmp_path: Path) -> None:
    model = b"tokenizer model bytes"
    url = "https://example.test/gemma.spiece.model"
    pinned = {"gemma3": SimpleNamespace(model_url=url, model_hash=_sha256(model))}
    cached = tmp_path / hashlib.sha1(url.encode()).hexdigest()

    assert local_tokens.cached_model("gemma3", tmp_path, pinned) is None
    cached.write_bytes(model)
    assert local_tokens.cached_model("gemma3", tmp_path, pinned) == model
    cached.write_bytes(b"corrupt")
    assert local_tokens.cached_model("gemma3", tmp_path, pinned) is None
    assert local_tokens.cached_model("gemma4", tmp_path, pinned) is None


def test_the_cache_is_where_the_sdk_loader_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sentencepiece", reason="the SDK's local tokenizer needs sentencepiece")
    from google.genai import _local_tokenizer_loader as loader

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = b"model bytes the SDK would have downloaded"
    url = "https://example.test/m.model"
    # The SDK's own loader saves into, and reads back from, the folder reconciler looks in.
    monkeypatch.setattr(loader, "_load_file", lambda _url: model)
    assert loader._load(file_url=url, expected_hash=_sha256(model)) == model
    pinned = {"gemma3": SimpleNamespace(model_url=url, model_hash=_sha256(model))}

    assert local_tokens.cached_model("gemma3", local_tokens.sdk_cache_dir(), pinned) == model


# -- a real sentencepiece model, trained here ------------------------------------------------

_CORPUS = [
    "summarise the following article in one sentence",
    "translate the sentence into french and keep the tone",
    "list three facts about the moon and the tides",
    "classify the review as positive or negative",
    "the quick brown fox jumps over the lazy dog",
] * 40


@pytest.fixture(scope="module")
def spm_model() -> bytes:
    """A small sentencepiece model trained on a few sentences: the library, the file format
    and the encoder are the real ones, only the vocabulary is tiny."""
    sentencepiece = pytest.importorskip("sentencepiece")
    import io

    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS),
        model_writer=out,
        vocab_size=50,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
    )
    return out.getvalue()


def _encoded(model: bytes, *texts: str) -> int:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model)
    return sum(len(processor.encode(text)) for text in texts)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_trained_model_in_the_sdk_cache_counts_every_text_of_a_request(
    tmp_path: Path, spm_model: bytes
) -> None:
    url = "https://example.test/gemma3.spiece.model"
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(spm_model)
    pinned = {"gemma3": SimpleNamespace(model_url=url, model_hash=_sha256(spm_model))}
    counter = offline_counter("models/gemini-2.5-flash", cache_dir=tmp_path, tokenizers=pinned)
    assert counter is not None
    request = {
        "contents": [
            {"role": "user", "parts": [{"text": "summarise the following article"}]},
            {"role": "model", "parts": [{"text": "the moon and the tides"}]},
        ],
        "systemInstruction": {"parts": [{"text": "keep the tone"}]},
    }

    assert counter(request) == _encoded(
        spm_model, "summarise the following article", "the moon and the tides", "keep the tone"
    )
    assert counter(request) > 3  # more than one token a text: the model really split them


def test_counted_tokens_from_a_trained_model_reach_the_plan(
    tmp_path: Path, spm_model: bytes
) -> None:
    url = "https://example.test/gemma3.spiece.model"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(spm_model)
    pinned = {"gemma3": SimpleNamespace(model_url=url, model_hash=_sha256(spm_model))}
    root = tmp_path / "project"
    root.mkdir()
    project = _project(root)

    desired = count_input_tokens(
        load_desired(project),
        project.root,
        lambda model: offline_counter(model, cache_dir=cache, tokenizers=pinned),
    )

    counted = {name: r.source.counted_input_tokens for name, r in desired.resources.items()}
    # gemini-2.5-pro maps to the same tokenizer: every resource is counted by the real model.
    assert counted == {
        "file": 4 * _encoded(spm_model, "a b c"),
        "inline": _encoded(spm_model, "one two"),
        "other": _encoded(spm_model, "not counted"),
    }
    plan = make_plan(desired, State(lineage="l"), live(), created_at=T0)
    assert all(action.input_tokens_counted for action in plan.actions)
