"""Prices, guardrails and saved plan files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.config import Guardrails, ModelPrice
from reconciler.errors import PlanError, StalePlanError
from reconciler.manifests.desired import DesiredResource
from reconciler.plan import (
    ActionKind,
    Guardrail,
    check_plan_current,
    default_price_table,
    dumps,
    estimate_tokens,
    loads,
    make_plan,
    raise_for_violations,
)
from reconciler.plan.actions import Admission
from reconciler.plan.cost import parse_size
from reconciler.plan.limits import ServiceLimits
from reconciler.render.text import render_text
from reconciler.state.document import JobState, TokenUsage
from tests.unit.plan.factories import (
    LINEAGE,
    T0,
    attempt,
    desired,
    job,
    live,
    record,
    resource,
    results,
    state,
)


def test_price_table_ships_the_common_models_with_its_date() -> None:
    table = default_price_table()
    assert table.as_of
    for model in (
        "gemini-3-flash-preview",
        "gemini-3-pro-preview",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
        "gemini-2.5-flash-image",
        "gemini-embedding-001",
    ):
        assert table.price_for(model) is not None, model


def test_price_lookup_prefers_the_longest_known_model_id() -> None:
    table = default_price_table()
    assert table.price_for("models/gemini-2.5-flash-lite-001") == table.price_for(
        "gemini-2.5-flash-lite"
    )
    assert table.price_for("gemini-9-ultra") is None


def test_project_prices_override_the_shipped_table() -> None:
    table = default_price_table().with_overrides(
        {"gemini-2.5-flash": ModelPrice(input_per_million=2)}
    )
    assert table.batch_input_cost("gemini-2.5-flash", 1_000_000) == pytest.approx(1.0)


def test_actual_cost_bills_cached_tokens_at_the_cached_rate_and_thinking_as_output() -> None:
    table = default_price_table().with_overrides(
        {
            "m": ModelPrice(
                input_per_million=1.0, output_per_million=10.0, cached_input_per_million=0.1
            ),
            "uncached": ModelPrice(input_per_million=1.0, output_per_million=10.0),
        }
    )
    usage = TokenUsage(
        prompt=1_000_000, cached=400_000, tool_use_prompt=100_000, output=50_000, thinking=50_000
    )
    # (600k + 100k) x $1 + 400k x $0.10 + 100k x $10 = $1.74, half at batch price.
    assert table.batch_usage_cost("m", usage) == pytest.approx(0.87)
    # No cached rate: cached tokens at the input rate.
    assert table.batch_usage_cost("uncached", usage) == pytest.approx(1.05)
    assert table.batch_usage_cost("gemini-9-ultra", usage) is None


def test_tokens_are_estimated_from_bytes() -> None:
    assert estimate_tokens(0) == 0 and estimate_tokens(4) == 1 and estimate_tokens(5) == 2


def test_sizes_parse_binary_and_decimal_units() -> None:
    assert parse_size("1GiB") == 1024**3 and parse_size("20MB") == 20_000_000
    assert parse_size(17) == 17
    with pytest.raises(ValueError):
        parse_size("lots")


def test_summary_totals_and_flags_unpriced_models() -> None:
    a = resource("a", size=4_000_000)
    b = resource("b", model="my-tuned-model", size=400)
    p = make_plan(desired(a, b), state(), live(), created_at=T0)
    s = p.summary
    assert (s.counts[ActionKind.CREATE], s.requests, s.bytes) == (2, 20, 4_000_400)
    assert s.estimated_input_tokens == 1_000_100
    assert s.estimated_cost_usd == pytest.approx(0.15)
    assert s.unpriced_models == ("my-tuned-model",) and s.is_estimate
    assert s.price_table_as_of == default_price_table().as_of


def _bounded(name: str, max_output_tokens: int | None) -> DesiredResource:
    made = resource(name, requests=10)
    return replace(made, source=replace(made.source, max_output_tokens=max_output_tokens))


def test_plan_shows_output_tokens_as_a_range_from_max_output_tokens() -> None:
    p = make_plan(desired(_bounded("a", 10 * 512)), state(), live(), created_at=T0)

    (action,) = p.actions
    assert action.max_output_tokens == 5120
    # gemini-2.5-flash: $2.50 per million output tokens, half in batch.
    assert action.max_output_cost_usd == pytest.approx(5120 * 2.5 / 1e6 * 0.5)
    assert p.summary.max_output_tokens == 5120 and not p.summary.unbounded_output_requests
    text = render_text(p)
    assert "Output: 0–5,120 tokens (maxOutputTokens, thinking included), up to ~$0.0064" in text
    assert "Input tokens estimated as bytes/4" in text


def test_one_unbounded_request_leaves_the_plans_output_unbounded() -> None:
    p = make_plan(desired(_bounded("a", 5120), _bounded("b", None)), state(), live(), created_at=T0)

    assert p.summary.max_output_tokens is None and p.summary.max_output_cost_usd is None
    assert "Output: not bounded" in render_text(p)


def test_guardrail_refuses_plan_over_cost_limit() -> None:
    p = make_plan(
        desired(resource(size=40_000_000)),
        state(),
        live(),
        created_at=T0,
        guardrails=Guardrails(max_estimated_cost_usd=0.5),
    )
    assert [v.guardrail for v in p.violations] == [Guardrail.MAX_ESTIMATED_COST]
    with pytest.raises(PlanError, match=r"max_estimated_cost_usd"):
        raise_for_violations(p)


def test_guardrail_refuses_models_not_allowed_and_oversized_jobs() -> None:
    p = make_plan(
        desired(resource("a", model="gemini-2.5-pro", requests=50)),
        state(),
        live(),
        created_at=T0,
        guardrails=Guardrails(allowed_models=["gemini-2.5-flash"], max_requests_per_job=20),
    )
    assert {(v.guardrail, v.resource) for v in p.violations} == {
        (Guardrail.ALLOWED_MODELS, "a"),
        (Guardrail.MAX_REQUESTS_PER_JOB, "a"),
    }


def test_admission_counts_running_jobs_minus_cancelled_and_is_no_violation() -> None:
    gone = resource("gone")
    gone_att = attempt(gone, 1)
    stranger = job(resource("stranger"), name="batches/stranger")
    lv = live(job(gone_att), stranger)
    ok = make_plan(
        desired(resource("new")),
        state(record(gone, gone_att)),
        lv,
        created_at=T0,
        guardrails=Guardrails(max_concurrent_jobs=2),
    )
    assert ok.violations == ()
    assert ok.admission == Admission(limit=2, running=1, start_now=1, waiting=0, waves=0)
    too_many = make_plan(
        desired(resource("new"), resource("new2")),
        state(),
        lv,
        created_at=T0,
        guardrails=Guardrails(max_concurrent_jobs=3),
    )
    assert too_many.violations == ()
    assert too_many.admission == Admission(limit=3, running=2, start_now=1, waiting=1, waves=1)
    assert "1 job(s) start now, 1 more in 1 wave as capacity frees" in render_text(too_many)


def test_new_jobs_past_a_models_enqueued_tokens_wait_instead_of_failing_the_plan() -> None:
    running = resource("running", size=8_000)
    att = attempt(running, 1)
    p = make_plan(
        desired(running, resource("new", size=4_000)),
        state(record(running, att)),
        live(job(att)),
        created_at=T0,
        limits=ServiceLimits(enqueued_tokens={"gemini-2.5-flash": 2_500}),
    )
    assert p.violations == ()
    assert p.admission is not None
    assert p.admission.start_now == 0 and p.admission.waiting == 1
    (fit,) = p.admission.tokens
    assert (fit.model, fit.limit, fit.enqueued, fit.start_now) == (
        "gemini-2.5-flash",
        2_500,
        2_000,
        0,
    )
    assert fit.waiting == 1_000
    assert "gemini-2.5-flash ~2,000 enqueued + ~1,000 waiting of 2,500" in render_text(p)


def test_a_job_over_its_models_enqueued_token_limit_is_refused_with_a_hint_to_shard() -> None:
    p = make_plan(
        desired(resource("huge", size=40_000)),
        state(),
        live(),
        created_at=T0,
        limits=ServiceLimits(enqueued_tokens={"gemini-2.5-flash": 2_500}),
    )
    assert [(v.guardrail, v.resource) for v in p.violations] == [
        (Guardrail.MAX_ENQUEUED_TOKENS, "huge")
    ]
    assert "shard the input" in p.violations[0].message


def _sample_plan() -> tuple:
    old, new = resource("a", content="v1"), resource("a", content="v2")
    att = attempt(old, 1, state=JobState.SUCCEEDED)
    s = state(record(old, att, results=results(old)), record(resource("b"), attempt(resource("b"))))
    d = desired(new)
    return make_plan(d, s, live(job(attempt(resource("b")))), created_at=T0), s, d


def test_plan_file_round_trips() -> None:
    p, _, _ = _sample_plan()
    assert loads(dumps(p)) == p
    assert json.loads(dumps(p))["format_version"] == 3


def test_plan_file_refuses_tampering_and_other_versions() -> None:
    p, _, _ = _sample_plan()
    doc = json.loads(dumps(p))
    doc["plan"]["actions"][0]["requests"] = 10**9
    with pytest.raises(PlanError, match="checksum"):
        loads(json.dumps(doc).encode())
    doc = json.loads(dumps(p))
    doc["format_version"] = 99
    with pytest.raises(PlanError, match="format version 99"):
        loads(json.dumps(doc).encode())
    with pytest.raises(PlanError, match="not a saved plan"):
        loads(b"\x00garbage")


def test_saved_plan_for_another_lineage_is_refused_as_not_matching() -> None:
    p, s, d = _sample_plan()
    other = s.model_copy(update={"lineage": "other"})
    with pytest.raises(StalePlanError, match="does not match the given state"):
        check_plan_current(p, other, d.manifests_sha256, p.settings_sha256)


def test_saved_plan_for_an_older_serial_or_other_manifests_is_stale() -> None:
    p, s, d = _sample_plan()
    check_plan_current(p, s, d.manifests_sha256, p.settings_sha256)
    assert p.state_lineage == LINEAGE
    with pytest.raises(StalePlanError, match=r"stale.*serial"):
        check_plan_current(p, s.model_copy(update={"serial": s.serial + 1}), d.manifests_sha256, "")
    with pytest.raises(StalePlanError, match=r"stale.*manifests"):
        check_plan_current(replace(p), s, "0" * 64, p.settings_sha256)
    with pytest.raises(StalePlanError, match=r"stale.*settings of reconciler.yaml"):
        check_plan_current(p, s, d.manifests_sha256, "0" * 64)


def test_importing_plan_and_render_does_not_import_the_sdk() -> None:
    code = (
        "import sys, reconciler.plan, reconciler.render, reconciler.render.text, "
        "reconciler.render.json, reconciler.render.markdown, reconciler.render.status; "
        "print(sorted(m for m in sys.modules if m.startswith('google.genai')))"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


def test_plan_file_round_trips_every_action_kind() -> None:
    from tests.unit.render.samples import zoo_plan

    p = zoo_plan()
    assert {a.kind for a in p.actions} == set(ActionKind)
    assert loads(dumps(p)) == p


def test_plan_file_of_version_1_names_its_shards_by_action_kind() -> None:
    """Version 1 had one `shards` field: shards to create for a resubmit, given up for a collect."""
    p, _, _ = _sample_plan()
    resubmit = replace(p.actions[0], kind=ActionKind.RESUBMIT, shards_to_create=(1, 2))
    collect = replace(p.actions[1], kind=ActionKind.COLLECT, shards_given_up=(0,))
    p = replace(p, actions=(resubmit, collect))
    doc = json.loads(dumps(p))
    body = doc["plan"]
    body["format_version"] = doc["format_version"] = 1
    for action in body["actions"]:
        action["shards"] = action.pop("shards_to_create") or action.pop("shards_given_up")
        action.pop("shards_given_up", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()

    # It keeps its version: apply holds it only to what version 1 said (planfile.verified_plan).
    assert loads(json.dumps(doc).encode()) == replace(p, format_version=1)
