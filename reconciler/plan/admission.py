"""Admission under the concurrent-job limit: which new jobs start now and which wait. Pure.

The service runs at most so many batch jobs per project at once (about 100; the emulator's
`max_concurrent_jobs`) and answers a create past it with 429 RESOURCE_EXHAUSTED. Rather than
fail those creates, apply admits them in waves as capacity frees; `plan` shows how the work fits.
The order is the manifest's `config.priority` (higher first), then manifest order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from reconciler.live.snapshot import Live
from reconciler.manifests.desired import DesiredResource
from reconciler.plan.actions import Action, ActionKind, Admission


def running_jobs(live: Live, cancelled: Iterable[str] = ()) -> int:
    """Jobs at the service that hold capacity now (pending or running), except `cancelled`."""
    gone = set(cancelled)
    return sum(
        1 for job in live.jobs.values() if not job.state.is_terminal and job.name not in gone
    )


def cancelled_by(actions: Iterable[Action]) -> set[str]:
    """The jobs these actions cancel (a cancel, or a replace that cancels first)."""
    cancelled: set[str] = set()
    for action in actions:
        if action.kind is ActionKind.CANCEL or (action.kind.is_replace and action.cancel_first):
            cancelled.update(action.job_names)
    return cancelled


def admission_order(
    actions: Iterable[Action], resources: Mapping[str, DesiredResource]
) -> list[Action]:
    """The job-creating actions among `actions`, higher `config.priority` first, then in
    manifest order (the order `resources` holds them)."""
    position = {name: index for index, name in enumerate(resources)}

    def key(action: Action) -> tuple[int, int, str]:
        resource = resources.get(action.resource)
        priority = resource.manifest.spec.config.priority if resource is not None else None
        return (-(priority or 0), position.get(action.resource, len(position)), action.resource)

    return sorted((a for a in actions if a.kind.creates_job), key=key)


def admit(ordered: Sequence[Action], free: int, limit: int) -> tuple[list[Action], list[Action]]:
    """Split `ordered` into the actions whose jobs fit in `free` slots now and those that wait.

    In order, without overtaking: a large action that does not fit holds back the ones after it,
    so priority is kept. An action with more jobs than `limit` starts alone, once nothing else
    holds capacity (free == limit), or it would never start.
    """
    admitted: list[Action] = []
    for index, action in enumerate(ordered):
        needed = min(max(1, action.jobs), limit)
        if needed > free:
            return admitted, list(ordered[index:])
        admitted.append(action)
        free -= needed
    return admitted, []


def plan_admission(
    actions: Sequence[Action],
    live: Live,
    resources: Mapping[str, DesiredResource],
    limit: int,
) -> Admission:
    """How `actions`' new jobs fit `limit` with the jobs `live` shows running."""
    running = running_jobs(live, cancelled_by(actions))
    ordered = admission_order(actions, resources)
    admitted, waiting = admit(ordered, max(0, limit - running), limit)
    now = sum(max(1, a.jobs) for a in admitted)
    later = sum(max(1, a.jobs) for a in waiting)
    return Admission(
        limit=limit,
        running=running,
        start_now=now,
        waiting=later,
        waves=math.ceil(later / limit) if later else 0,
    )
