"""Costs: the shipped price tables (the Developer API's, Vertex AI's), their overrides, the bytes -> tokens rule of thumb, and what
the tokens a job's results reported cost.

Estimates say so: tokens are guessed from bytes (about 4 bytes per token for English text in
JSON; images, audio and other languages differ), and only input tokens are priced because output
length is unknown before a job runs. Actual cost prices the results' `usageMetadata`: input
(uncached prompt and tool-use prompt) at the input rate, cached prompt tokens at the cached rate,
output and thinking tokens at the output rate. The batch price is the standard price times
`batch_discount` (50 % at the time of the table), for every rate.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from reconciler.config import ModelPrice
from reconciler.state.document import TokenUsage

BYTES_PER_TOKEN = 4
"""Rule of thumb for UTF-8 English text; a documented estimate, not a tokenizer."""

_SIZE = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


@dataclass(frozen=True, slots=True)
class PriceTable:
    """USD per million tokens by model id, standard (non-batch) prices."""

    as_of: str
    """Date the shipped prices were taken; renderers print it beside every cost."""
    models: Mapping[str, ModelPrice] = field(default_factory=lambda: MappingProxyType({}))
    batch_discount: float = 0.5
    """Batch price = standard price x this."""
    label: str = ""
    """Which table this is, when not the Developer API's (empty); printed after the date."""

    @property
    def stamp(self) -> str:
        """What a plan's cost line says the prices are: the date, and the table's label."""
        return f"{self.as_of} ({self.label})" if self.label else self.as_of

    def with_overrides(self, overrides: Mapping[str, ModelPrice]) -> PriceTable:
        """This table with the project's `prices:` entries taking precedence."""
        if not overrides:
            return self
        merged = {**self.models, **overrides}
        return PriceTable(self.as_of, MappingProxyType(merged), self.batch_discount, self.label)

    def price_for(self, model: str) -> ModelPrice | None:
        """The price of `model` (`models/` prefix and version suffixes tolerated), or None.

        The longest known id that prefixes the model wins, so `gemini-2.5-flash-lite-001` is priced
        as `gemini-2.5-flash-lite`, not as `gemini-2.5-flash`.
        """
        name = model.removeprefix("models/")
        exact = self.models.get(name)
        if exact is not None:
            return exact
        candidates = [known for known in self.models if name.startswith(known + "-")]
        if not candidates:
            return None
        return self.models[max(candidates, key=len)]

    def batch_input_cost(self, model: str, tokens: int) -> float | None:
        """Estimated batch-price USD for `tokens` input tokens, or None for an unknown model."""
        price = self.price_for(model)
        if price is None:
            return None
        return round(tokens / 1_000_000 * price.input_per_million * self.batch_discount, 6)

    def batch_output_cost(self, model: str, tokens: int) -> float | None:
        """Batch-price USD for `tokens` output tokens (thinking included), or None (unknown
        model)."""
        price = self.price_for(model)
        if price is None:
            return None
        return round(tokens / 1_000_000 * price.output_per_million * self.batch_discount, 6)

    def batch_usage_cost(self, model: str, usage: TokenUsage) -> float | None:
        """Batch-price USD of the tokens results reported, or None for an unknown model.

        `prompt` includes `cached`, which is billed at the cached rate (the input rate where the
        table has none); thinking is billed as output.
        """
        price = self.price_for(model)
        if price is None:
            return None
        cached_rate = price.cached_input_per_million
        if cached_rate is None:
            cached_rate = price.input_per_million
        cached = min(usage.cached, usage.prompt)
        per_million = (
            (usage.prompt - cached + usage.tool_use_prompt) * price.input_per_million
            + cached * cached_rate
            + (usage.output + usage.thinking) * price.output_per_million
        )
        # Not rounded: a job's cost may be micro-dollars, and totals add many of them.
        return per_million / 1_000_000 * self.batch_discount


_TABLES = {"vertex": "prices_vertex.json"}
"""Endpoints billed from their own table; every other endpoint (the Developer API, its
emulator, a URL serving its protocol) is priced from prices.json."""


USD_DECIMALS = 9
"""Dollar figures a machine reads are rounded to a billionth of a dollar: sums of per-token
prices otherwise print binary noise (`1.7400000000000003e-05`)."""


def round_usd(dollars: float) -> float:
    return round(dollars, USD_DECIMALS)


@functools.cache
def default_price_table(endpoint: str = "gemini") -> PriceTable:
    """The table shipped for `endpoint` (a project's `endpoint` setting): Vertex AI's
    reconciler/plan/prices_vertex.json, else the Developer API's prices.json (package data,
    each read once)."""
    name = _TABLES.get(endpoint.strip().lower(), "prices.json")
    raw = json.loads(resources.files("reconciler.plan").joinpath(name).read_text("utf-8"))
    models = {model: ModelPrice.model_validate(entry) for model, entry in raw["models"].items()}
    return PriceTable(
        as_of=str(raw["as_of"]),
        models=MappingProxyType(models),
        batch_discount=float(raw["batch_discount"]),
        label=str(raw.get("label", "")),
    )


def project_price_table(endpoint: str, overrides: Mapping[str, ModelPrice]) -> PriceTable:
    """The prices a project plans and records costs with: its endpoint's table, then its
    `prices:` overrides."""
    return default_price_table(endpoint).with_overrides(overrides)


def estimate_tokens(n_bytes: int) -> int:
    """Estimated input tokens for `n_bytes` of request JSON (bytes / 4, rounded up)."""
    return math.ceil(max(n_bytes, 0) / BYTES_PER_TOKEN)


def parse_size(value: int | str) -> int:
    """Bytes for a size given as an int or text such as `500MiB`, `1GiB`, `20MB`.

    Raises:
        ValueError: the text is not a size.
    """
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    unit = (match.group("unit") or "B").lower()
    return int(float(match.group("n")) * _UNITS[unit])
