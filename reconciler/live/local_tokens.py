"""Input tokens counted by google-genai's local tokenizer, before planning, only when it can run
offline: nothing here ever downloads.

The SDK's `LocalTokenizer` needs the `sentencepiece` package and a Gemma tokenizer model that it
fetches from raw.githubusercontent.com on first use and caches under
`$TMPDIR/vertexai_tokenizer_model/<sha1 of the URL>`, checked against a sha256 it pins.
Reconciler has no network but the service's, and a plan must not wait on a download, so the
counter is offered only when `sentencepiece` is installed and that cache already holds the
model with the pinned hash; the model's bytes are then handed to sentencepiece directly (the
SDK's loader would download whenever its cache fails to verify) and the request's texts are
taken as `LocalTokenizer.count_tokens` takes them. Models tokenized through Hugging Face
`transformers` (Gemini 3.1+) are never counted. Everything else keeps the bytes/4 estimate, and
the plan says which one it used.

Private SDK names used here (`_local_tokenizer_loader`, its `_TOKENIZERS` and cache layout,
`local_tokenizer._TextsAccumulator`) are reached defensively: when an SDK release moves them,
the counter is simply not offered (tests/unit/live/test_local_tokens.py shows it, and runs
the counting with a sentencepiece model trained in the test).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler.manifests.desired import Desired, DesiredResource
from reconciler.manifests.jsonl import iter_requests
from reconciler.manifests.model import Task

TokenCounter = Callable[[Mapping[str, Any]], int]
"""Input tokens of one GenerateContentRequest (REST shape)."""

MAX_COUNTED_BYTES = 16 << 20
"""Sources larger than this keep the bytes/4 estimate: counting reads and tokenizes every
request, which must not make `plan` slow."""


def sdk_cache_dir() -> Path:
    """Where google-genai keeps downloaded tokenizer models: `_local_tokenizer_loader._load`
    joins `tempfile.gettempdir()` and this folder name, and names each file by the sha1 of
    its URL."""
    return Path(tempfile.gettempdir(), "vertexai_tokenizer_model")


def cached_model(
    tokenizer_name: str, cache_dir: Path, tokenizers: Mapping[str, Any]
) -> bytes | None:
    """The sentencepiece model of `tokenizer_name` from `cache_dir`, only when its sha256 is
    the one pinned for it in `tokenizers` (the SDK's `_TOKENIZERS`: URL and hash), as the
    SDK's own loader checks it; None when absent, corrupt, or not a sentencepiece tokenizer
    (Hugging Face ones have no entry)."""
    config = tokenizers.get(tokenizer_name)
    url, expected = getattr(config, "model_url", None), getattr(config, "model_hash", None)
    if not isinstance(url, str) or not isinstance(expected, str):
        return None  # a Hugging Face tokenizer, or an SDK that moved these names
    path = cache_dir / hashlib.sha1(url.encode()).hexdigest()  # the SDK names its cache files so
    try:
        model = path.read_bytes()
    except OSError:
        return None
    return model if hashlib.sha256(model).hexdigest() == expected else None


def sentencepiece_counter(model: bytes) -> TokenCounter | None:
    """A counter over the sentencepiece `model` (its serialized bytes) that counts what the
    SDK's `LocalTokenizer.count_tokens` counts: the texts its `_TextsAccumulator` takes from
    the contents and the system instruction, each encoded, the token counts summed.

    The model is handed over as bytes rather than left to `LocalTokenizer`, whose loader
    downloads whenever its cache does not verify: this path can never reach the network.
    None when the SDK no longer has the pieces used here."""
    try:
        import sentencepiece
        from google.genai import _transformers, types
        from google.genai.local_tokenizer import _TextsAccumulator

        processor = sentencepiece.SentencePieceProcessor()
        processor.LoadFromSerializedProto(model)
    # Not only ImportError: an optional sentencepiece built against another protobuf fails at
    # import with TypeError and the like, and a damaged model file with RuntimeError. Either
    # way the estimate falls back to bytes/4 (and says so) instead of stopping the command.
    except Exception:
        return None

    def count(request: Mapping[str, Any]) -> int:
        texts = _TextsAccumulator()
        texts.add_contents(_transformers.t_contents(request.get("contents") or []))
        system = request.get("systemInstruction", request.get("system_instruction"))
        if system:
            config = types.CountTokensConfig.model_validate({"system_instruction": system})
            texts.add_contents(_transformers.t_contents([config.system_instruction]))
        encoded = processor.encode(list(texts.get_texts()))
        return sum(len(tokens) for tokens in encoded)

    return count


def offline_counter(
    model: str, *, cache_dir: Path | None = None, tokenizers: Mapping[str, Any] | None = None
) -> TokenCounter | None:
    """A token counter for `model` if the SDK's local tokenizer covers it and its model file
    is already in the SDK's cache (`cache_dir`, default `sdk_cache_dir()`) with the hash the
    SDK pins (`tokenizers`, default the SDK's table); never a download."""
    cache = cache_dir or sdk_cache_dir()
    # Without a model in the cache nothing can be counted, and the SDK's loader (which the
    # tokenizer names below need) imports requests, urllib3, protobuf and sentencepiece: some
    # 0.1-0.2 s of every `plan` and `apply`, paid for nothing on the usual machine.
    if not _holds_files(cache) or importlib.util.find_spec("sentencepiece") is None:
        return None
    try:
        from google.genai import _local_tokenizer_loader as loader

        name = loader.get_tokenizer_name(model.removeprefix("models/"))
        pinned = getattr(loader, "_TOKENIZERS", {}) if tokenizers is None else tokenizers
    except (ImportError, AttributeError, ValueError):
        return None
    found = cached_model(name, cache, pinned)
    return sentencepiece_counter(found) if found is not None else None


def _holds_files(folder: Path) -> bool:
    """Whether `folder` exists and holds anything (a cached model is a file in it)."""
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


def _requests(resource: DesiredResource, root: Path) -> list[Mapping[str, Any]]:
    requests = resource.manifest.spec.source.requests
    if requests is not None:
        return [item.get("request", item) for item in requests]
    assert resource.manifest.spec.source.file is not None
    path = root / resource.manifest.spec.source.file
    return [json.loads(raw) for _, _, raw in iter_requests(path)]


def count_input_tokens(
    desired: Desired, root: Path, counter_for: Callable[[str], TokenCounter | None]
) -> Desired:
    """`desired` with `counted_input_tokens` set on each generate source the counter covers
    (`counter_for(model)` None: left to bytes/4), up to `MAX_COUNTED_BYTES` per source.

    A pre-plan step: the planner itself never counts.
    """
    counters: dict[str, TokenCounter | None] = {}
    counted: dict[str, DesiredResource] = {}
    for name, resource in desired.resources.items():
        spec = resource.manifest.spec
        if spec.task is not Task.GENERATE or resource.source.bytes > MAX_COUNTED_BYTES:
            counted[name] = resource
            continue
        if spec.model not in counters:
            counters[spec.model] = counter_for(spec.model)
        counter = counters[spec.model]
        if counter is None:
            counted[name] = resource
            continue
        try:
            tokens = sum(counter(request) for request in _requests(resource, root))
        except (ValueError, TypeError, KeyError):
            # A request the text-only tokenizer cannot read (e.g. a local media part): the
            # whole source keeps the bytes/4 estimate rather than a count that leaves it out.
            counted[name] = resource
            continue
        source = dataclasses.replace(resource.source, counted_input_tokens=tokens)
        counted[name] = dataclasses.replace(resource, source=source)
    return dataclasses.replace(desired, resources=counted)
