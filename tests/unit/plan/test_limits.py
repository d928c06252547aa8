"""plan/limits.py: the published per-tier quotas, and reconciler.yaml's overrides of them."""

from __future__ import annotations

from reconciler.config import ProjectConfig
from reconciler.plan.limits import resolve_limits, tier_table


def _config(data: dict[str, object]) -> ProjectConfig:
    return ProjectConfig.model_validate(data)


def test_the_tier_picks_each_models_published_enqueued_token_limit() -> None:
    flash = [
        resolve_limits(_config({"limits": {"tier": tier}})).token_limit("gemini-2.5-flash")
        for tier in (1, 2, 3)
    ]
    assert flash == [3_000_000, 400_000_000, 1_000_000_000]


def test_the_default_tier_is_1_with_20_gb_of_storage_and_2_gb_per_file() -> None:
    limits = resolve_limits(_config({}))
    assert limits.tier == 1
    assert limits.token_limit("models/gemini-2.5-flash") == 3_000_000
    assert (limits.storage_bytes, limits.file_bytes) == (20_000_000_000, 2_000_000_000)


def test_a_declared_limit_overrides_the_table_and_versions_count_as_their_model() -> None:
    limits = resolve_limits(
        _config({"limits": {"tier": 2, "enqueued_tokens": {"gemini-2.5-flash": 1_000}}})
    )
    assert limits.token_limit("gemini-2.5-flash-001") == 1_000
    assert limits.token_limit("gemini-2.5-flash-lite") == 500_000_000
    assert limits.token_limit("gemini-embedding-001") is None


def test_the_shipped_table_names_its_source_and_date() -> None:
    table = tier_table()
    assert table.source.startswith("https://ai.google.dev/")
    assert table.as_of
    assert set(table.enqueued_tokens) == {1, 2, 3}
