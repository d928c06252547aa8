"""Renderer behaviours that golden files do not pin down by themselves."""

from __future__ import annotations

import json

from reconciler.plan import ActionKind, make_plan
from reconciler.render import render_markdown, render_status_text, render_text, status_rows
from reconciler.render._words import size, verb
from reconciler.state.document import JobState, TokenUsage
from tests.unit.plan.factories import (
    T0,
    attempt,
    desired,
    job,
    live,
    record,
    resource,
    state,
)
from tests.unit.render.samples import quiet_plan, zoo_plan


def test_text_names_reason_and_totals_like_terraform() -> None:
    text = render_text(zoo_plan())
    assert "  # e-replace will be replaced because the source changed" in text
    assert "-/+ e-replace" in text
    assert "~ source.sha256:" in text and "# forces replacement" in text
    assert "+ key key-100, key-101" in text
    assert "Plan: 1 to create, 1 to adopt" in text
    assert "Estimated cost:" in text and "prices as of" in text


def test_text_says_no_changes_and_mentions_running_jobs() -> None:
    text = render_text(quiet_plan())
    assert "No changes." in text and "1 job(s) still running" in text


def test_text_lists_reportable_noops_but_hides_up_to_date_ones() -> None:
    text = render_text(zoo_plan())
    assert "l-exhausted needs no action because attempts are exhausted" in text
    assert "k-noop" not in text


def test_every_kind_has_a_verb_and_a_distinct_symbol() -> None:
    assert len({k.symbol for k in ActionKind}) == len(ActionKind)
    assert all(verb(k) for k in ActionKind)


def test_markdown_has_details_per_resource_and_diff_blocks() -> None:
    md = render_markdown(zoo_plan())
    assert md.startswith("## reconciler plan")
    assert md.count("<details>") == len([a for a in zoo_plan().actions if a.resource != "k-noop"])
    assert "```diff" in md and "| `-/+` replace | 1 |" in md
    assert "- source.sha256:" in md and "+ source.sha256:" in md


def test_markdown_stays_within_the_limit_and_says_it_truncated() -> None:
    resources = [resource(f"job-{i:04d}", labels={"note": "x" * 200}) for i in range(600)]
    p = make_plan(desired(*resources), state(), live(), created_at=T0)
    md = render_markdown(p)
    assert len(md) <= 65_536
    assert "Output truncated:" in md and "more resource(s) not shown" in md
    small = render_markdown(p, max_chars=5_000)
    assert len(small) <= 5_000


def test_markdown_fence_outgrows_backticks_in_values() -> None:
    p = make_plan(desired(resource(labels={"note": "```"})), state(), live(), created_at=T0)
    assert "````diff" in render_markdown(p)


def test_status_rows_compare_desired_state_and_live() -> None:
    res = resource("a")
    att = attempt(res, 1, state=JobState.RUNNING)
    gone = resource("b")
    s = state(record(res, att), record(gone, attempt(gone, 1)))
    lv = live(job(att, state=JobState.SUCCEEDED))
    p = make_plan(desired(res), s, lv, created_at=T0)
    rows = status_rows(desired(res), s, lv, p)
    assert [(r.resource, r.desired, r.recorded, r.live, r.next_action) for r in rows] == [
        ("a", True, JobState.RUNNING, JobState.SUCCEEDED, ActionKind.COLLECT),
        ("b", False, JobState.RUNNING, None, ActionKind.FORGET),
    ]
    text = render_status_text(rows)
    assert text.splitlines()[0].split() == [
        "RESOURCE",
        "DESIRED",
        "STATE",
        "ATTEMPT",
        "RECORDED",
        "LIVE",
        "WAITED",
        "RESULTS",
        "NEXT",
    ]
    assert "(removed)" in text


def test_sizes_read_naturally() -> None:
    assert [size(n) for n in (999, 4_000, 2_400_000)] == ["999 B", "4.0 kB", "2.4 MB"]


def test_status_says_how_long_a_job_has_waited_and_why_its_predecessor_was_replaced() -> None:
    from datetime import timedelta

    from reconciler.live.snapshot import Live, LiveJob
    from reconciler.state.document import JobAttempt, ResourceRecord, State
    from tests.unit.plan.factories import T0, desired, resource

    res = resource("eval")
    replaced = JobAttempt(
        number=1,
        tag="t1",
        spec_hash=res.spec_hash,
        job_name="batches/one",
        state=JobState.CANCELLED,
        intent_at=T0,
        error="replaced because its job waited past policy.timeout",
    )
    current = JobAttempt(
        number=2, tag="t2", spec_hash=res.spec_hash, job_name="batches/two", intent_at=T0
    )
    record = ResourceRecord(name="eval", spec_hash=res.spec_hash, attempts=(replaced, current))
    waiting = LiveJob("batches/two", "", JobState.PENDING, "models/m", create_time=T0)
    live = Live(observed_at=T0 + timedelta(hours=2, minutes=5), jobs={waiting.name: waiting})
    (row,) = status_rows(desired(res), State(lineage="l", resources={"eval": record}), live)
    assert row.waited == "2h 5m"
    text = render_status_text((row,))
    assert "2h 5m" in text
    assert "eval: attempt 2 replaced because its job waited past policy.timeout" in text


def test_dollar_figures_in_json_carry_no_binary_noise() -> None:
    """Sums of per-token prices are not exact in binary; JSON readers get the rounded figure."""
    from reconciler.render.spend import JobSpend, SpendGroup, render_spend_json

    jobs = [
        JobSpend("eval", n, None, f"batches/{n}", "gemini-2.5-flash", {}, TokenUsage(), cost, None)
        for n, cost in enumerate((1.2e-05, 1e-06), start=1)
    ]
    assert sum(j.cost_usd or 0 for j in jobs) == 1.3000000000000001e-05  # the noise itself
    group = SpendGroup("gemini-2.5-flash")
    for spent in jobs:
        group.add(spent)

    document = json.loads(render_spend_json([("model", [group])], jobs))

    assert document["total"]["cost_usd"] == 1.3e-05
    assert document["groupings"]["model"][0]["cost_usd"] == 1.3e-05
