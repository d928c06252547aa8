"""Apply: carry out a Plan, then (with wait) converge until every job settles.

Dispatch only: each action goes to the stage that handles its kind (create.py, collect.py,
maintain.py), as its own task under a semaphore (bounded concurrency); a failure is recorded for
its resource and the others go on. The state is saved after every step that changes the world,
in this order for a job: intent (before the create call) -> job created -> job settled ->
results collected. A crash at any point leaves a state from which the next run converges: an
intent whose job exists is adopted by its identity tag, never created twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import assert_never

from reconciler.apply import collect, create, maintain
from reconciler.apply.capacity import CapacityQueue
from reconciler.apply.cleanup import clean_what_was_left
from reconciler.apply.context import ApplyContext, ApplyReport, crash_point
from reconciler.apply.converge import converge, unsettled
from reconciler.apply.events import EventKind
from reconciler.errors import ApplyError, ReconcilerError, StateWriteLostError
from reconciler.live.snapshot import Live
from reconciler.plan.actions import Action, ActionKind, Plan


async def apply_plan(context: ApplyContext, plan: Plan, live: Live | None = None) -> ApplyReport:
    """Execute `plan`; with wait, converge until every job settles or the timeout passes.

    `live`: the listing `plan` was made against, to run it on instead of listing again; the
    caller hands it only when it is fresh and was taken under the lock this run holds (so a
    job a killed run left is in it, and is adopted, as in a new listing). Without the files
    a job-creating plan needs, the service is listed again.

    Raises:
        ApplyError: one or more resources failed (the others were carried out).
        StateWriteLostError: a step could not be saved; the run stopped at once.
    """
    try:
        return await _apply_plan(context, plan, live)
    except ExceptionGroup as group:
        lost = group.subgroup(StateWriteLostError)
        if lost is None:
            raise
        raise _first(lost) from None


def _first(group: BaseExceptionGroup[StateWriteLostError]) -> StateWriteLostError:
    first = group.exceptions[0]
    return first if isinstance(first, StateWriteLostError) else _first(first)


async def _apply_plan(context: ApplyContext, plan: Plan, listed: Live | None) -> ApplyReport:
    started = context.clock.monotonic()
    needs_files = any(a.kind.creates_job for a in plan.actions)
    if listed is not None and (listed.files_listed or not needs_files):
        live = listed
    else:
        live = await context.adapter.snapshot(include_files=needs_files)
    semaphore = asyncio.Semaphore(max(1, context.options.parallelism))
    capacity = CapacityQueue()

    async def execute(actions: Sequence[Action], live: Live) -> None:
        async with asyncio.TaskGroup() as group:
            for action in capacity.take(context, actions, live):
                if action.kind is ActionKind.NOOP and not action.diff:
                    continue
                if action.resource in context.report.failures:
                    continue
                group.create_task(_guarded(context, semaphore, capacity, action, live))

    async def run_one(action: Action, live: Live) -> None:
        await _guarded(context, semaphore, capacity, action, live)

    await execute(plan.actions, live)
    if context.options.wait:
        await converge(context, started, execute, capacity, run_one)
    # The collects' cleanups (apply.background) end before the sweep, which retries their
    # failed deletes.
    await context.background.drain()
    await clean_what_was_left(context, plan.cleanup)
    if not context.options.wait:
        context.report.unsettled = unsettled(context.store.state, context.options.targets)
        context.report.waiting = sorted(capacity.queued)
    if context.report.failures:
        raise ApplyError(context.report.failures)
    return context.report


async def _guarded(
    context: ApplyContext,
    semaphore: asyncio.Semaphore,
    capacity: CapacityQueue,
    action: Action,
    live: Live,
) -> None:
    """Run one action; its failure is recorded against its resource and the others go on,
    except a lost state write, which stops every action (raised out of the task group). A
    create refused for capacity, or (waiting) any transient failure, is left to a later round
    (capacity.py) instead."""
    async with semaphore:
        try:
            await dispatch(context, action, live)
        except StateWriteLostError:
            raise
        except ReconcilerError as exc:
            if capacity.retry_later(context, action, exc):
                return
            context.report.failures[action.resource] = exc
            context.emit(EventKind.FAILED, action.resource, str(exc))
        except OSError as exc:
            error = ReconcilerError(f"{action.kind.value} failed: {exc}")
            context.report.failures[action.resource] = error
            context.emit(EventKind.FAILED, action.resource, str(error))


async def dispatch(context: ApplyContext, action: Action, live: Live) -> None:
    """Hand `action` to the stage for its kind."""
    match action.kind:
        case ActionKind.CREATE | ActionKind.RECREATE | ActionKind.RESUBMIT:
            await create.create(context, action, live)
        case ActionKind.REPLACE:
            if action.cancel_first:
                why = f"replaced because {action.reason.text}"
                await maintain.cancel_jobs(context, action.resource, action.job_names, why)
            await create.create(context, action, live)
        case ActionKind.ADOPT:
            await maintain.adopt(context, action, live)
        case ActionKind.REFRESH:
            await maintain.refresh(context, action, live)
        case ActionKind.COLLECT:
            await collect.collect(context, action, live)
        case ActionKind.UPDATE if action.job_names:
            await maintain.set_priority(context, action, live)
        case ActionKind.UPDATE:
            await maintain.update(context, action)
        case ActionKind.CANCEL:
            await maintain.cancel_jobs(context, action.resource, action.job_names)
            crash_point("cancel-sent")
            await maintain.forget(context, action)
        case ActionKind.FORGET:
            await maintain.forget(context, action)
        case ActionKind.NOOP:
            await maintain.sync_fields(context, action.resource)
        case _:
            assert_never(action.kind)
