"""The models the emulator knows: `models.get` / `models.list`, and which batch method each takes.

A small catalogue of the Gemini models the batch API is used with, in the shape of the service's
`Model` resource. The batch routes refuse a model that is not here, or that does not list the
method (`batchGenerateContent` / `asyncBatchEmbedContent`) in its `supportedGenerationMethods`,
with the service's 404 ("... is not found for API version v1beta, or is not supported for ...").
Tests add or replace models (`Catalogue.put`, or the `/_emulator/models` admin route).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

GENERATE = "batchGenerateContent"
EMBED = "asyncBatchEmbedContent"

_GENERATE_METHODS = ("generateContent", "countTokens", "createCachedContent", GENERATE)
_EMBED_METHODS = ("embedContent", "countTextTokens", "countTokens", EMBED)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One `Model` resource."""

    id: str
    """Without `models/`, e.g. `gemini-2.5-flash`."""
    display_name: str
    input_token_limit: int
    output_token_limit: int
    methods: tuple[str, ...]
    version: str = "001"
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"models/{self.id}",
            "version": self.version,
            "displayName": self.display_name,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(self.methods),
        }
        if self.description:
            body["description"] = self.description
        return body

    @staticmethod
    def from_json(body: Any) -> ModelInfo:
        """A model from its JSON form (admin route); raises ValueError on a bad shape."""
        if not isinstance(body, dict):
            raise ValueError("a model must be a JSON object")
        name = body.get("name")
        methods = body.get("supportedGenerationMethods", [GENERATE])
        if not isinstance(name, str) or not name.removeprefix("models/"):
            raise ValueError("a model needs a `name`")
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ValueError("`supportedGenerationMethods` must be a list of strings")
        limits = (body.get("inputTokenLimit", 1_048_576), body.get("outputTokenLimit", 65_536))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in limits):
            raise ValueError("token limits must be non-negative integers")
        model_id = name.removeprefix("models/")
        return ModelInfo(
            id=model_id,
            display_name=str(body.get("displayName", model_id)),
            input_token_limit=limits[0],
            output_token_limit=limits[1],
            methods=tuple(methods),
            version=str(body.get("version", "001")),
            description=str(body.get("description", "")),
        )


def _generate(model_id: str, display: str, output_limit: int = 65_536) -> ModelInfo:
    return ModelInfo(model_id, display, 1_048_576, output_limit, _GENERATE_METHODS)


DEFAULT_MODELS: tuple[ModelInfo, ...] = (
    _generate("gemini-3-pro-preview", "Gemini 3 Pro Preview"),
    _generate("gemini-3-flash-preview", "Gemini 3 Flash Preview"),
    _generate("gemini-2.5-pro", "Gemini 2.5 Pro"),
    _generate("gemini-2.5-flash", "Gemini 2.5 Flash"),
    _generate("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite"),
    ModelInfo("gemini-2.5-flash-image", "Nano Banana", 32_768, 32_768, _GENERATE_METHODS, "2.0"),
    _generate("gemini-2.0-flash", "Gemini 2.0 Flash", 8_192),
    _generate("gemini-2.0-flash-lite", "Gemini 2.0 Flash-Lite", 8_192),
    ModelInfo("gemini-embedding-001", "Gemini Embedding 001", 2_048, 1, _EMBED_METHODS),
    ModelInfo(
        "text-embedding-004",
        "Text Embedding 004",
        2_048,
        1,
        ("embedContent", EMBED),
        "004",
    ),
)
"""Batch-capable models as the service lists them (methods and limits from `models.list`)."""


class Catalogue:
    """The models of one running emulator; thread-safe, ordered by insertion."""

    def __init__(self, models: tuple[ModelInfo, ...] = DEFAULT_MODELS) -> None:
        self._lock = threading.Lock()
        self._models = {m.id: m for m in models}

    def get(self, model: str) -> ModelInfo | None:
        with self._lock:
            return self._models.get(model.removeprefix("models/"))

    def all(self) -> list[ModelInfo]:
        with self._lock:
            return list(self._models.values())

    def put(self, *models: ModelInfo, replace_all: bool = False) -> None:
        """Add (or overwrite) models; with `replace_all`, these become the whole catalogue."""
        with self._lock:
            if replace_all:
                self._models = {}
            for model in models:
                self._models[model.id] = model

    def supports(self, model: str, method: str) -> bool:
        info = self.get(model)
        return info is not None and method in info.methods
