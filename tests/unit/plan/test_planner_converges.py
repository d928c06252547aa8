"""Property: applying a plan's effects (as `apply --wait` would, every new job succeeding) and
planning again yields only no-ops, whatever desired/state/live combination we start from."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import parse_tag
from reconciler.manifests.desired import Desired, DesiredResource
from reconciler.plan import ActionKind, Plan, Reason, make_plan
from reconciler.state.document import (
    AttemptPurpose,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
)
from tests.fixtures.properties import examples
from tests.unit.plan.factories import (
    T0,
    attempt,
    desired,
    live,
    record,
    resource,
    state,
    tag,
)

NAMES = ("a", "b", "c")
POLICIES: tuple[dict[str, object], ...] = (
    {},
    {"resubmit": [], "max_attempts": 1},
    {"resubmit": ["FAILED", "EXPIRED", "CANCELLED"], "max_attempts": 3, "retry_failed_requests": 1},
    {"rerun": "all", "max_attempts": 2},
)


@st.composite
def variants(draw: st.DrawFn, name: str) -> DesiredResource:
    return resource(
        name,
        content=draw(st.sampled_from(["v1", "v2"])),
        model=draw(st.sampled_from(["gemini-2.5-flash", "gemini-2.5-pro"])),
        output=draw(st.sampled_from([f"results/{name}.jsonl", f"out/{name}.jsonl"])),
        labels=draw(st.sampled_from([{}, {"team": "x"}])),
        policy=draw(st.sampled_from(POLICIES)),
        requests=draw(st.integers(1, 4)),
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Desired, State, Live, dict[str, dict[str, str]]]:
    wanted: list[DesiredResource] = []
    records: list[ResourceRecord] = []
    jobs: list[LiveJob] = []
    previous: dict[str, dict[str, str]] = {}
    counter = itertools.count()
    for name in NAMES:
        want = draw(variants(name))
        if draw(st.booleans()):
            wanted.append(want)
        if draw(st.booleans()):
            was = draw(st.sampled_from([want, draw(variants(name))]))
            if draw(st.booleans()):
                previous[name] = dict(was.source.key_digests)
            attempts = []
            for number in range(1, draw(st.integers(0, 3)) + 1):
                spec = draw(st.sampled_from([was.spec_hash, want.spec_hash]))
                shards: list[tuple[int | None, int]] = draw(
                    st.sampled_from([[(None, 0)], [(0, 0), (1, 0)], [(0, 0), (1, 0), (1, 1)]])
                )
                purpose = draw(st.sampled_from(list(AttemptPurpose)))
                for shard, rerun in shards:
                    intent = draw(st.booleans()) and draw(st.booleans())
                    att = attempt(
                        was,
                        number,
                        state=draw(
                            st.sampled_from([s for s in JobState if s is not JobState.UNKNOWN])
                        ),
                        job_name=None if intent else f"batches/j{next(counter)}",
                        purpose=purpose,
                        shard=shard,
                        rerun=rerun,
                        spec_hash=spec,
                    )
                    attempts.append(att)
                    if draw(st.booleans()):
                        jobs.append(
                            LiveJob(
                                name=att.job_name or f"batches/j{next(counter)}",
                                display_name=f"x {att.tag}",
                                state=draw(st.sampled_from(list(JobState))),
                                model=None,
                                create_time=T0,
                            )
                        )
            res = None
            if draw(st.booleans()):
                numbers = sorted({a.number for a in attempts})
                res = ResultsRecord(
                    location=was.manifest.spec.output,
                    sha256="0" * 64,
                    bytes=1,
                    succeeded=1,
                    failed=draw(st.integers(0, 2)),
                    collected_at=T0,
                    from_attempts=tuple(draw(st.lists(st.sampled_from(numbers), unique=True)))
                    if numbers
                    else (),
                )
            records.append(record(was, *attempts, results=res, fields=draw(st.booleans())))
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            other = draw(st.sampled_from([want, draw(variants(name))]))
            jobs.append(
                LiveJob(
                    name=f"batches/stray{next(counter)}",
                    display_name=tag(name, other.spec_hash, draw(st.integers(1, 4))),
                    state=draw(st.sampled_from(list(JobState))),
                    model=None,
                    create_time=T0,
                )
            )
    return desired(*wanted), state(*records), live(*jobs), previous


@dataclass
class Simulator:
    """What `apply --wait` does to state and live, assuming every job it creates succeeds."""

    desired: Desired
    state: State
    jobs: dict[str, LiveJob]
    counter: itertools.count[int]

    def set_job(self, name: str, job_state: JobState) -> None:
        if name in self.jobs:
            self.jobs[name] = replace(self.jobs[name], state=job_state)

    def finish(self, rec: ResourceRecord, res: DesiredResource, number: int) -> ResourceRecord:
        """Every job of attempt `number` succeeded and its results are merged into the output."""
        attempts = []
        group = set(rec.attempt_group(number))
        for a in rec.attempts:
            if a in group and a.job_name:
                self.set_job(a.job_name, JobState.SUCCEEDED)
                a = a.model_copy(update={"state": JobState.SUCCEEDED})
            attempts.append(a)
        old = rec.results
        purpose = next(a.purpose for a in attempts if a.number == number)
        merged = old.from_attempts if old and purpose is not AttemptPurpose.FULL else ()
        results = ResultsRecord(
            location=res.manifest.spec.output,
            sha256="1" * 64,
            bytes=1,
            succeeded=res.source.request_count,
            failed=0,
            collected_at=T0,
            from_attempts=(*merged, number),
        )
        return self.up_to_date(
            rec.model_copy(update={"attempts": tuple(attempts), "results": results}), res
        )

    @staticmethod
    def up_to_date(rec: ResourceRecord, res: DesiredResource) -> ResourceRecord:
        return rec.model_copy(
            update={
                "spec_hash": res.spec_hash,
                "replacing": res.replacing_fields(),
                "in_place": res.in_place_fields(),
            }
        )

    def create(
        self,
        rec: ResourceRecord | None,
        res: DesiredResource,
        number: int,
        jobs: int,
        purpose: AttemptPurpose,
        only_shards: tuple[int, ...] = (),
    ) -> ResourceRecord:
        rec = rec or record(res)
        reruns: dict[int | None, int] = {}
        if only_shards:
            # Those shards run again alone; a lost intent's rerun number is reused.
            group = {a.shard: a for a in rec.attempt_group(number)}
            reruns = {k: group[k].rerun + (0 if group[k].is_intent else 1) for k in only_shards}
            kept = tuple(
                a
                for a in rec.attempts
                if not (a.is_intent and a.number == number and a.shard in reruns)
            )
        else:
            kept = tuple(a for a in rec.attempts if a.number != number)
            reruns = dict.fromkeys([None] if jobs <= 1 else list(range(jobs)), 0)
        new = []
        for shard, rerun in reruns.items():
            att = attempt(
                res,
                number,
                job_name=f"batches/sim{next(self.counter)}",
                shard=shard,
                rerun=rerun,
                purpose=purpose,
                state=JobState.RUNNING,
            )
            assert att.job_name is not None
            self.jobs[att.job_name] = LiveJob(
                att.job_name, f"x {att.tag}", JobState.RUNNING, None, T0
            )
            new.append(att)
        rec = rec.model_copy(update={"attempts": (*kept, *new)})
        return self.finish(rec, res, number)

    def adopt(
        self, rec: ResourceRecord, res: DesiredResource, job_names: tuple[str, ...]
    ) -> ResourceRecord:
        attempts = list(rec.attempts)
        for job_name in job_names:
            t = parse_tag(self.jobs[job_name].display_name)
            assert t is not None
            attempts = [
                a for a in attempts if (a.number, a.shard, a.rerun) != (t.attempt, t.shard, t.rerun)
            ]
            attempts.append(
                attempt(
                    res,
                    t.attempt,
                    job_name=job_name,
                    shard=t.shard,
                    rerun=t.rerun,
                    state=self.jobs[job_name].state,
                )
            )
        return rec.model_copy(update={"attempts": tuple(attempts)})

    def apply(self, plan: Plan, previous: dict[str, dict[str, str]]) -> None:
        for action in plan.actions:
            name = action.resource
            res = self.desired.resources.get(name)
            rec = self.state.resources.get(name)
            kind = action.kind
            if kind in (ActionKind.CANCEL, ActionKind.FORGET):
                for job in action.job_names:
                    self.set_job(job, JobState.CANCELLED)
                self.state = self.state.without_resource(name)
                continue
            if kind is ActionKind.NOOP:
                continue
            assert res is not None, action
            if kind.creates_job:
                if action.cancel_first:
                    for job in action.job_names:
                        self.set_job(job, JobState.CANCELLED)
                assert action.next_attempt is not None and action.purpose is not None
                if action.reason is Reason.PREVIOUS_CREATE_LOST and rec is not None:
                    # The lost shards' siblings that reached the service are adopted first.
                    rec = self.adopt(rec, res, action.job_names)
                rec = self.create(
                    rec,
                    res,
                    action.next_attempt,
                    action.jobs,
                    action.purpose,
                    action.shards_to_create,
                )
                previous[name] = dict(res.source.key_digests)
            elif kind is ActionKind.ADOPT:
                rec = self.adopt(rec or record(res), res, action.job_names)
                assert action.attempt is not None
                rec = self.finish(rec, res, action.attempt)
            elif kind in (ActionKind.REFRESH, ActionKind.COLLECT):
                assert rec is not None and action.attempt is not None
                bad = any(
                    self.jobs[j].state in (JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED)
                    for j in action.job_names
                )
                if kind is ActionKind.COLLECT and bad:
                    rec = rec.model_copy(
                        update={
                            "attempts": tuple(
                                a.model_copy(update={"state": self.jobs[a.job_name].state})
                                if a.job_name in self.jobs
                                else a
                                for a in rec.attempts
                            )
                        }
                    )
                    rec = self.up_to_date(rec, res)
                    if action.shards_given_up:
                        # The other shards' results are saved, the given-up shards' requests
                        # recorded as failed.
                        results = ResultsRecord(
                            location=res.manifest.spec.output,
                            sha256="2" * 64,
                            bytes=1,
                            succeeded=1,
                            failed=1,
                            collected_at=T0,
                            from_attempts=(action.attempt,),
                        )
                        rec = rec.model_copy(update={"results": results})
                else:
                    rec = self.finish(rec, res, action.attempt)
            elif kind is ActionKind.UPDATE:
                assert rec is not None
                rec = self.up_to_date(rec, res)
                if rec.results is not None:
                    rec = rec.model_copy(
                        update={
                            "results": rec.results.model_copy(
                                update={"location": res.manifest.spec.output}
                            )
                        }
                    )
                previous[name] = dict(res.source.key_digests)
            else:
                raise AssertionError(f"unexpected {kind}")
            self.state = self.state.with_resource(rec)


@pytest.mark.property
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_applying_a_plan_then_planning_again_yields_only_noops(world: Any) -> None:
    d, s, lv, previous = world
    first = make_plan(d, s, lv, created_at=T0, previous_key_digests=previous)
    sim = Simulator(d, s, dict(lv.jobs), itertools.count())
    sim.apply(first, previous)
    second = make_plan(
        d,
        sim.state,
        Live(observed_at=T0, jobs=sim.jobs),
        created_at=T0,
        previous_key_digests=previous,
    )
    assert [a for a in second.actions if a.kind is not ActionKind.NOOP] == [], (first, second)
    assert not second.has_changes
