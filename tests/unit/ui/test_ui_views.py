"""What the web view decides, on plain values: a resource's phase, its actual cost, why each
attempt was made, the cost series -- and that every user value reaches a page escaped."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from reconciler.live.snapshot import BatchStats, Live
from reconciler.manifests.desired import Desired, DesiredResource
from reconciler.plan.cost import default_price_table
from reconciler.plan.planner import make_plan
from reconciler.state.document import AttemptPurpose, JobAttempt, JobState, State, TokenUsage
from reconciler.ui.chart import nice_ceiling
from reconciler.ui.pages import costs_page, overview_page, resource_page
from reconciler.ui.records import ResultView
from reconciler.ui.results_page import ResultsPage, ResultsQuery, results_page
from reconciler.ui.sanitize import sanitize
from reconciler.ui.views import (
    Snapshot,
    cost_points,
    cumulative_series,
    overview_rows,
    why_created,
)
from tests.unit.plan.factories import (
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


def priced(res: DesiredResource, usd: float, hours: int) -> JobAttempt:
    """A collected attempt: its results' usage, billed on the resource's model, and its cost."""
    return attempt(res, state=JobState.SUCCEEDED).model_copy(
        update={
            "usage": TokenUsage(
                prompt=1000, output=100, responses=1, model=res.manifest.spec.model
            ),
            "cost_usd": usd,
            "collected_at": T0 + timedelta(hours=hours),
        }
    )


def _snapshot(desire: Desired, st: State, lv: Live, *, plan: bool = True) -> Snapshot:
    made = make_plan(desire, st, lv, created_at=T0) if plan else None
    return Snapshot(desire, st, lv, made, default_price_table())


def test_a_resource_with_results_of_its_spec_is_synced_and_a_running_one_is_running() -> None:
    done, busy = resource("done"), resource("busy")
    first = attempt(done, state=JobState.SUCCEEDED)
    moving = attempt(busy, state=JobState.RUNNING)
    st = state(record(done, first, results=results(done)), record(busy, moving))
    rows = overview_rows(
        _snapshot(desired(done, busy), st, live(job(first, state=JobState.SUCCEEDED), job(moving)))
    )
    assert {r.name: r.phase for r in rows} == {"busy": "running", "done": "synced"}


def test_without_the_service_a_moving_job_keeps_the_phase_the_state_recorded() -> None:
    busy = resource("busy")
    moving = attempt(busy, state=JobState.RUNNING)
    snap = Snapshot(desired(busy), state(record(busy, moving)), None, None, default_price_table())

    assert [r.phase for r in overview_rows(snap)] == ["running"]


def test_a_resource_only_in_the_state_is_removed_and_a_new_one_waits_for_create() -> None:
    gone, new = resource("gone"), resource("new")
    st = state(record(gone, attempt(gone, state=JobState.SUCCEEDED), results=results(gone)))
    rows = overview_rows(_snapshot(desired(new), st, live()))
    assert {r.name: r.phase for r in rows} == {"gone": "removed", "new": "create pending"}


def test_actual_cost_sums_the_collected_attempts_and_is_absent_until_one_is_priced() -> None:
    res = resource()
    priced = [
        attempt(res, n, state=JobState.SUCCEEDED).model_copy(
            update={"cost_usd": usd, "collected_at": T0 + timedelta(hours=n)}
        )
        for n, usd in ((1, 0.25), (2, 0.5))
    ]
    with_cost = _snapshot(desired(res), state(record(res, *priced)), live(), plan=False)
    without = _snapshot(desired(res), state(record(res, attempt(res))), live(), plan=False)
    assert overview_rows(with_cost)[0].actual_usd == 0.75
    assert overview_rows(without)[0].actual_usd is None
    assert "—" in overview_page(without, "p")


def test_why_an_attempt_was_created_reads_from_its_record() -> None:
    res = resource()
    first = attempt(res, 1, state=JobState.SUCCEEDED)
    changed = attempt(res, 2, spec_hash="f" * 64)
    retry = attempt(res, 3, purpose=AttemptPurpose.RETRY_FAILED, spec_hash="f" * 64)
    rec = record(res, first, changed, retry)
    assert why_created(rec, first).startswith("first attempt")
    assert why_created(rec, changed).startswith("the manifest or its input changed")
    assert "retry of the requests that failed" in why_created(rec, retry)


def test_cost_series_are_running_totals_per_model_and_per_label() -> None:
    evals = resource("evals", labels={"team": "evals"})
    other = resource("other", model="gemini-2.5-pro")

    st = state(record(evals, priced(evals, 1.0, 1)), record(other, priced(other, 2.0, 2)))
    points = cost_points(_snapshot(desired(evals, other), st, live(), plan=False))
    by_model = cumulative_series(points, "model")
    assert by_model == {
        "gemini-2.5-flash": [(T0 + timedelta(hours=1), 1.0)],
        "gemini-2.5-pro": [(T0 + timedelta(hours=2), 2.0)],
    }
    assert set(cumulative_series(points, "team")) == {"evals", "(none)"}
    page = costs_page(_snapshot(desired(evals, other), st, live(), plan=False), None, "p")
    assert page.count("<svg") == 2


def test_cost_series_put_spend_under_the_model_the_results_were_billed_on() -> None:
    before = resource("evals", model="gemini-2.5-flash")
    moved = resource("evals", model="gemini-2.5-pro")  # the manifest has moved on since
    billed = priced(before, 1.0, 1)
    st = state(record(moved, billed))

    points = cost_points(_snapshot(desired(moved), st, live(), plan=False))

    assert [p.model for p in points] == ["gemini-2.5-flash"]


def test_requests_of_a_running_job_come_from_the_service_batch_stats() -> None:
    busy, queued = resource("busy"), resource("queued")
    running = attempt(busy, state=JobState.RUNNING)
    waiting = attempt(queued, state=JobState.PENDING)
    reported = dataclasses.replace(job(running), stats=BatchStats(total=40, succeeded=25, failed=3))
    st = state(record(busy, running), record(queued, waiting))
    snap = _snapshot(
        desired(busy, queued), st, live(reported, job(waiting, state=JobState.PENDING))
    )

    rows = {r.name: r for r in overview_rows(snap)}

    assert rows["busy"].progress == BatchStats(total=40, succeeded=25, failed=3)
    assert rows["queued"].progress is None
    page = overview_page(snap, "p")
    assert "28 / 40 done" in page and "3 failed" in page


def test_user_text_is_escaped_on_every_page() -> None:
    hostile = "<script>alert(1)</script>"
    res = resource("evil", labels={"note": hostile})
    snap = _snapshot(desired(res), state(record(res, attempt(res))), live(), plan=False)
    shown = resource_page(snap, "evil", f"metadata:\n  name: {hostile}\n", hostile)
    view = ResultView(0, hostile, texts=(hostile,), error=hostile)
    results_html = results_page(
        ResultsPage("evil", hostile, 1, True, [(view, hostile)], ResultsQuery(query=hostile), 1),
        hostile,
    )
    for html in (shown, results_html):
        assert hostile not in html
        assert "&lt;script&gt;" in html


def test_the_chart_axis_ends_at_a_round_amount_above_the_highest_total() -> None:
    assert nice_ceiling(0.7) == 0.8
    assert nice_ceiling(1.05) == 1.2
    assert nice_ceiling(37.0) == 40.0
    assert nice_ceiling(0.0003) == 0.0004


def test_the_plan_markdown_keeps_its_collapsible_sections_and_loses_anything_executable() -> None:
    hostile = 'x<img src=x onerror="alert(1)"><script>alert(2)</script><a href="javascript:1">y</a>'
    markup = sanitize(
        f'<details><summary><b>r</b></summary><pre><code class="language-diff">+ a</code></pre>'
        f'</details><table><tr><td style="text-align:right">1</td></tr></table><p>{hostile}</p>'
    )
    assert '<details><summary><b>r</b></summary><pre><code class="language-diff">' in markup
    assert '<td style="text-align:right">' in markup
    for gone in ("<img", "onerror", "<script", "javascript:", "<a "):
        assert gone not in markup
