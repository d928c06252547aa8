"""The service's quotas for a project: the published per-tier table plus reconciler.yaml's
`limits:` overrides, resolved into one value the planner and apply read. Pure.

The table ships as `reconciler/plan/limits.json` (package data) with the page it was read from
and when; `limits.tier` picks a column and `limits.enqueued_tokens` overrides single models.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from reconciler.config import ProjectConfig


def model_key(model: str) -> str:
    """A model id as limits and counts key it: without the `models/` prefix."""
    return model.removeprefix("models/")


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """A project's quotas at the service, as apply and `plan` count against them."""

    concurrent_jobs: int = 100
    """Pending + running batch jobs per project (`guardrails.max_concurrent_jobs`)."""
    enqueued_tokens: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per model id: estimated input tokens of jobs pending or running at once."""
    storage_bytes: int = 20_000_000_000
    file_bytes: int = 2_000_000_000
    tier: int | None = None
    """The usage tier the defaults were taken from (None: no tier table applied)."""
    as_of: str = ""
    """When the shipped table was read (empty: no table)."""

    def token_limit(self, model: str) -> int | None:
        """The enqueued-token limit of `model`, or None when none is known.

        The longest known id that prefixes the model wins (`gemini-2.5-flash-001` counts as
        `gemini-2.5-flash`, `gemini-2.5-flash-lite` as itself), as prices are looked up.
        """
        name = model_key(model)
        exact = self.enqueued_tokens.get(name)
        if exact is not None:
            return exact
        candidates = [known for known in self.enqueued_tokens if name.startswith(known + "-")]
        if not candidates:
            return None
        return self.enqueued_tokens[max(candidates, key=len)]


@dataclass(frozen=True, slots=True)
class TierTable:
    """The shipped table (reconciler/plan/limits.json)."""

    as_of: str
    source: str
    concurrent_jobs: int
    file_bytes: int
    storage_bytes: int
    enqueued_tokens: Mapping[int, Mapping[str, int]]


@functools.cache
def tier_table() -> TierTable:
    """The table shipped as reconciler/plan/limits.json (package data, read once)."""
    raw = json.loads(resources.files("reconciler.plan").joinpath("limits.json").read_text("utf-8"))
    tiers = {
        int(tier): MappingProxyType({str(k): int(v) for k, v in models.items()})
        for tier, models in raw["enqueued_tokens"].items()
    }
    return TierTable(
        as_of=str(raw["as_of"]),
        source=str(raw["source"]),
        concurrent_jobs=int(raw["concurrent_jobs"]),
        file_bytes=int(raw["file_bytes"]),
        storage_bytes=int(raw["storage_bytes"]),
        enqueued_tokens=MappingProxyType(tiers),
    )


def resolve_limits(config: ProjectConfig) -> ServiceLimits:
    """The project's limits: the tier's published defaults, then `guardrails.max_enqueued_tokens`
    (the older spelling), then `limits.enqueued_tokens`."""
    table = tier_table()
    limits = config.limits
    tokens = {
        **table.enqueued_tokens.get(limits.tier, {}),
        **{model_key(m): n for m, n in config.guardrails.max_enqueued_tokens.items()},
        **{model_key(m): n for m, n in limits.enqueued_tokens.items()},
    }
    return ServiceLimits(
        concurrent_jobs=config.guardrails.max_concurrent_jobs,
        enqueued_tokens=MappingProxyType(tokens),
        storage_bytes=limits.storage_bytes or table.storage_bytes,
        file_bytes=limits.file_bytes or table.file_bytes,
        tier=limits.tier,
        as_of=table.as_of,
    )
