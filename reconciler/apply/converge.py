"""The converge stage: with wait, poll and re-plan until every job settles or time runs out.

Each round is one paginated `list` of the service's jobs and one pure re-plan; only follow-up
actions (collect, adopt, refresh, resubmit and recreate per policy, and the replacement of a job
stuck past `policy.timeout`) and the approved creates still waiting for capacity (capacity.py)
are carried out, never a create or cancel the manifests' policy does not call for. Waits back
off exponentially with jitter, and are cut short when the service's request counts, or how long
this project's jobs took, say a job is about to end (poll.py).

Collects are pipelined: a settled job's collect starts in the background and polling goes on for
the rest, so a download never holds back the next poll, and a job that ends during a long collect
is seen at the next poll, not after it. A resource being collected is left out of the rounds
until its collect ends. Once nothing runs, waits or is left but collects, converge waits for
them and re-plans at once (no poll interval after the last collect): the run ends as soon as
the last result is collected. That last re-plan reuses the round's listing when the round only
collected: jobs that ended do not change, and the lock keeps any other run from creating jobs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from reconciler.apply.capacity import CapacityQueue
from reconciler.apply.context import ApplyContext
from reconciler.apply.events import Event, EventKind, Phase
from reconciler.apply.poll import Sighting, first_sightings, next_pause, summed_stats, typical_run
from reconciler.errors import ReconcilerError
from reconciler.live.snapshot import Live, LiveJob
from reconciler.plan.actions import Action, ActionKind, Plan, Reason
from reconciler.plan.planner import key_digests_wanted, plan_now
from reconciler.plan.situation import tag_index
from reconciler.state.document import JobState, State
from reconciler.state.request_keys import load_key_digests
from reconciler.state.results_check import check_local_results

FOLLOW_UP_KINDS = frozenset(
    {
        ActionKind.COLLECT,
        ActionKind.ADOPT,
        ActionKind.REFRESH,
        ActionKind.RESUBMIT,
        ActionKind.RECREATE,
    }
)

Execute = Callable[[Sequence[Action], Live], Awaitable[None]]
"""Carries out one round's actions against its live snapshot (admission, then the executor's
dispatch), returning when all have ended."""
RunOne = Callable[[Action, Live], Coroutine[Any, Any, None]]
"""Carries out one action (no admission: it creates no job); its failure is recorded against its
resource, as in a round."""


async def converge(
    context: ApplyContext,
    started: float,
    execute: Execute,
    capacity: CapacityQueue,
    run_one: RunOne,
) -> None:
    """Poll, re-plan and execute follow-ups (and the creates `capacity` holds back) until
    nothing runs, waits or is left to do, or the timeout (measured from `started`, a monotonic
    time) passes. Collects run through `run_one` in the background; the rest through `execute`."""
    collecting: dict[str, asyncio.Task[None]] = {}
    try:
        # Leaving the group waits for the collects still under way (after a timeout).
        async with asyncio.TaskGroup() as background:
            await _rounds(context, started, execute, capacity, run_one, background, collecting)
    except BaseExceptionGroup as group:
        # The rounds' own failure (the service unreachable, a lost state write) is raised as
        # it was before collects ran in the background; several failures stay a group.
        raise (group.exceptions[0] if len(group.exceptions) == 1 else group) from None


async def _rounds(
    context: ApplyContext,
    started: float,
    execute: Execute,
    capacity: CapacityQueue,
    run_one: RunOne,
    background: asyncio.TaskGroup,
    collecting: dict[str, asyncio.Task[None]],
) -> None:
    clock, options, report = context.clock, context.options, context.report
    delay = context.project.config.poll.initial_seconds
    max_delay = context.project.config.poll.max_seconds
    timeout = options.timeout_seconds
    rechecking = False
    reuse: Live | None = None
    sightings: dict[str, Sighting] = {}
    while True:
        live = reuse or await context.adapter.snapshot(include_files=False)
        reuse = None
        sightings = first_sightings(sightings, live)
        state = context.store.state
        wanted = key_digests_wanted(context.desired, state)
        digests = await asyncio.to_thread(load_key_digests, context.store.backend, state, wanted)
        plan = plan_now(
            context.project.config,
            context.desired,
            state,
            live,
            now=clock.now(),
            previous_key_digests=digests,
            targets=options.targets,
            results_checks=await asyncio.to_thread(
                check_local_results, context.project.root, state
            ),
        )
        for name in [n for n, task in collecting.items() if task.done()]:
            del collecting[name]
        queued = capacity.queued
        follow_ups = [
            a
            for a in plan.actions
            if _follows_up(a, queued)
            and a.resource not in report.failures
            and a.resource not in collecting
        ]
        acting = [a for a in follow_ups if a.kind is not ActionKind.REFRESH]
        for action in follow_ups:
            if action.kind is ActionKind.COLLECT:
                collecting[action.resource] = background.create_task(run_one(action, live))
        await execute([a for a in follow_ups if a.kind is not ActionKind.COLLECT], live)
        # A resource being collected is no longer waited for: its job has ended.
        running = [
            n for n in unsettled(context.store.state, options.targets) if n not in collecting
        ]
        elapsed = clock.monotonic() - started
        _report_progress(context, live, running, elapsed)
        if not running and not acting and not collecting and not capacity.queued:
            _fail_settled_without_results(context, plan)
            return
        if (acting or collecting) and not running and not capacity.queued and not rechecking:
            # What is left is collecting what ended: once the collects are done the fleet may
            # be settled, so re-plan at once rather than after a poll interval. Once in a row,
            # so a follow-up that keeps failing still waits between rounds.
            only_collects = all(a.kind is ActionKind.COLLECT for a in acting)
            if collecting:
                await asyncio.wait(collecting.values())
            # Jobs that ended do not change, and no other run creates jobs while we hold the
            # lock: after collects alone, this round's listing is as good as a new one.
            reuse = live if only_collects else None
            rechecking = True
            continue
        if timeout is not None and elapsed >= timeout:
            report.unsettled = running
            report.waiting = sorted(capacity.queued)
            context.emit(
                EventKind.WARNING,
                None,
                f"stopped waiting after {timeout:g}s; still running: {', '.join(running)}. "
                "The next `reconciler apply` collects them.",
            )
            return
        rechecking = False
        state = context.store.state
        pause = next_pause(
            context.rng.uniform(delay / 2, delay),
            _current_jobs(state, live, running),
            live.observed_at,
            clock.now(),
            floor=context.project.config.poll.initial_seconds,
            sightings=sightings,
            typical=typical_run(_current_jobs(state, live, list(state.resources))),
        )
        if timeout is not None:
            pause = min(pause, max(0.0, timeout - elapsed))
        await clock.sleep(pause)
        delay = min(max_delay, delay * 2)


def _follows_up(action: Action, queued: set[str]) -> bool:
    """Whether a round carries `action` out: a follow-up, a replacement the manifest's
    `policy.timeout` calls for (a job created by this very run may be the one stuck: waiting on
    it until `--timeout` would defeat the policy), or an approved create held for capacity."""
    if action.kind in FOLLOW_UP_KINDS:
        return True
    if action.kind is ActionKind.REPLACE and action.reason is Reason.JOB_STUCK:
        return True
    return action.kind.creates_job and action.resource in queued


def _current_jobs(state: State, live: Live, resources: Sequence[str]) -> list[LiveJob]:
    """The live jobs of the current attempts of `resources`."""
    jobs = []
    for name in resources:
        record = state.resources[name]
        for attempt in record.attempt_group(record.current_number):
            job = live.jobs.get(attempt.job_name or "")
            if job is not None:
                jobs.append(job)
    return jobs


def _report_progress(
    context: ApplyContext, live: Live, running: Sequence[str], elapsed: float
) -> None:
    state = context.store.state
    for name in running:
        jobs = [job for job in _current_jobs(state, live, [name]) if not job.state.is_terminal]
        if jobs:
            started = any(job.state is JobState.RUNNING for job in jobs)
            context.phase(
                name, Phase.RUNNING if started else Phase.PENDING, stats=summed_stats(jobs)
            )
    counts = Counter(
        job.state.value
        for resource, tagged in tag_index(live, state).items()
        if resource in state.resources
        for _, job in tagged
    )
    context.reporter.emit(
        Event(
            EventKind.PROGRESS,
            None,
            f"{len(running)} job(s) still running",
            counts=tuple(sorted(counts.items())),
            elapsed_seconds=elapsed,
        )
    )


def _fail_settled_without_results(context: ApplyContext, plan: Plan) -> None:
    """A job that ended badly and will not run again is a failure of its resource, so CI
    goes red instead of reporting success with results missing."""
    for action in plan.actions:
        if action.kind is ActionKind.NOOP and action.reason.is_report:
            message = f"{action.detail}; not resubmitted because {action.reason.text}"
            context.report.failures.setdefault(action.resource, ReconcilerError(message))
            context.emit(EventKind.FAILED, action.resource, message)


def unsettled(state: State, targets: Sequence[str] = ()) -> list[str]:
    """Resources (of `targets`, if given) whose current attempt has a job not yet ended."""
    names = []
    for name, record in state.resources.items():
        if targets and name not in targets:
            continue
        if not record.attempts:
            continue
        group = record.attempt_group(record.current_number)
        if any(not a.state.is_terminal for a in group if a.job_name is not None):
            names.append(name)
    return sorted(names)
