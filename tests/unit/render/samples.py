"""Sample plans for the renderer golden files: one resource for every action kind."""

from __future__ import annotations

from reconciler.config import Guardrails
from reconciler.live.snapshot import Live
from reconciler.manifests.desired import Desired
from reconciler.plan import Plan, make_plan
from reconciler.state.document import AttemptPurpose, JobState, State
from tests.unit.plan.factories import (
    T0,
    attempt,
    desired,
    job,
    key_digests,
    live,
    record,
    resource,
    results,
    state,
)


def zoo_inputs() -> tuple[Desired, State, Live, dict[str, dict[str, str]]]:
    """Desired, state and live with one resource per ActionKind (and a report)."""
    new = resource("a-create", model="gemini-3-flash-preview", requests=1200, size=2_400_000)
    adopt = resource("b-adopt")
    refresh = resource("c-refresh")
    refresh_att = attempt(refresh, 1, state=JobState.PENDING)
    collect = resource("d-collect")
    collect_att = attempt(collect, 1)
    old_keys = key_digests(100, "v1")
    new_keys = {**old_keys, "key-000": "changed", "key-100": "new", "key-101": "new"}
    del new_keys["key-050"]
    replace_old = resource("e-replace", keys=old_keys, content="v1", size=100_000)
    replace_new = resource("e-replace", keys=new_keys, content="v2", size=101_000)
    replace_att = attempt(replace_old, 1, state=JobState.SUCCEEDED)
    update_old = resource("f-update", output="results/old.jsonl", labels={"team": "evals"})
    update_new = resource("f-update", output="results/new.jsonl", labels={"team": "research"})
    update_att = attempt(update_old, 1, state=JobState.SUCCEEDED)
    resubmit = resource("g-resubmit", model="gemini-2.5-pro", size=50_000)
    resubmit_att = attempt(resubmit, 1)
    recreate = resource("h-recreate", model="gemini-embedding-001", task="embed")
    recreate_att = attempt(recreate, 1)
    cancel = resource("i-cancel")
    cancel_att = attempt(cancel, 2)
    forget = resource("j-forget")
    forget_att = attempt(forget, 1, state=JobState.SUCCEEDED)
    noop = resource("k-noop")
    noop_att = attempt(noop, 1, state=JobState.SUCCEEDED)
    exhausted = resource("l-exhausted", policy={"max_attempts": 1})
    exhausted_att = attempt(exhausted, 1, state=JobState.FAILED)
    retry = resource("m-retry", policy={"retry_failed_requests": 2}, requests=40, size=8_000)
    retry_att = attempt(retry, 1, state=JobState.SUCCEEDED, purpose=AttemptPurpose.FULL)
    d = desired(
        new,
        adopt,
        refresh,
        collect,
        replace_new,
        update_new,
        resubmit,
        recreate,
        noop,
        exhausted,
        retry,
    )
    s = state(
        record(refresh, refresh_att),
        record(collect, collect_att),
        record(replace_old, replace_att, results=results(replace_old)),
        record(update_old, update_att, results=results(update_old)),
        record(resubmit, resubmit_att),
        record(recreate, recreate_att),
        record(cancel, cancel_att),
        record(forget, forget_att, results=results(forget)),
        record(noop, noop_att, results=results(noop)),
        record(exhausted, exhausted_att),
        record(retry, retry_att, results=results(retry, failed=3)),
    )
    lv = live(
        job(adopt, name="batches/crashed-create"),
        job(refresh_att, state=JobState.RUNNING),
        job(collect_att, state=JobState.SUCCEEDED),
        job(resubmit_att, state=JobState.EXPIRED),
        job(cancel_att),
        job(noop_att, state=JobState.SUCCEEDED),
        job(exhausted_att, state=JobState.FAILED),
    )
    return d, s, lv, {"e-replace": old_keys}


def zoo_plan() -> Plan:
    d, s, lv, previous = zoo_inputs()
    return make_plan(
        d,
        s,
        lv,
        created_at=T0,
        previous_key_digests=previous,
        guardrails=Guardrails(
            allowed_models=["gemini-2.5-flash", "gemini-3-flash-preview", "gemini-embedding-001"]
        ),
    )


def quiet_plan() -> Plan:
    """Nothing to do: one resource up to date, one still running."""
    done = resource("done")
    done_att = attempt(done, 1, state=JobState.SUCCEEDED)
    busy = resource("busy")
    busy_att = attempt(busy, 1)
    return make_plan(
        desired(done, busy),
        state(record(done, done_att, results=results(done)), record(busy, busy_att)),
        live(job(busy_att)),
        created_at=T0,
    )
