"""Input tokens counted by google-genai's local tokenizer, before planning, only when it can run
offline: nothing here ever downloads.

The SDK's `LocalTokenizer` needs the `sentencepiece` package and a Gemma tokenizer model that it
fetches from raw.githubusercontent.com on first use and caches under
`$TMPDIR/vertexai_tokenizer_model/`. Reconciler has no network but the service's, and a plan
must not wait on a download, so the counter is offered only when `sentencepiece` is installed
and the SDK's cache already holds the model file with the hash the SDK pins; models tokenized
through Hugging Face `transformers` (Gemini 3.1+) are never counted. Everything else keeps the
bytes/4 estimate, and the plan says which one it used.

Private SDK names used here (`_local_tokenizer_loader`, its `_TOKENIZERS` and cache layout) are
reached defensively: when an SDK release moves them, the counter is simply not offered
(tests/unit/live/test_local_tokens.py shows it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import tempfile
import warnings
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


def _cached_model(loader: Any, tokenizer_name: str) -> bool:
    """Whether the SDK's cache holds the tokenizer model with its pinned hash (no download)."""
    config = getattr(loader, "_TOKENIZERS", {}).get(tokenizer_name)
    url, expected = getattr(config, "model_url", None), getattr(config, "model_hash", None)
    if not isinstance(url, str) or not isinstance(expected, str):
        return False  # a Hugging Face tokenizer, or an SDK that moved these names
    cached = Path(tempfile.gettempdir(), "vertexai_tokenizer_model")
    path = cached / hashlib.sha1(url.encode()).hexdigest()  # the SDK names its cache files so
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == expected
    except OSError:
        return False


def offline_counter(model: str) -> TokenCounter | None:
    """A token counter for `model` if the SDK's local tokenizer runs here without a download."""
    if importlib.util.find_spec("sentencepiece") is None:
        return None
    try:
        from google.genai import _local_tokenizer_loader as loader
        from google.genai.local_tokenizer import LocalTokenizer

        name = loader.get_tokenizer_name(model.removeprefix("models/"))
    except (ImportError, AttributeError, ValueError):
        return None
    if not _cached_model(loader, name):
        return None
    tokenizer = LocalTokenizer(model.removeprefix("models/"))

    def count(request: Mapping[str, Any]) -> int:
        system = request.get("systemInstruction", request.get("system_instruction"))
        config = {"system_instruction": system} if system else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental", once per call
            result = tokenizer.count_tokens(request.get("contents") or [], config=config)
        return int(result.total_tokens or 0)

    return count


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
