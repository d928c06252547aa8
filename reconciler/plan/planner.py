"""Pure planner: (desired, state, live) -> Plan, following DESIGN §5; no I/O, no clock, no SDK.

This module scopes the plan (`--target`), gathers each resource's facts (plan.situation), asks
the rule ladder (plan.rules) for its action, and totals the plan up. What each action is and
why lives in the rules; what it carries lives in plan.builders and plan.workload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from reconciler.config import Cleanup, Guardrails, ProjectConfig
from reconciler.errors import PlanError
from reconciler.live.snapshot import Live
from reconciler.manifests.desired import Desired
from reconciler.plan import builders
from reconciler.plan.actions import Action, Plan, Reason, summarise
from reconciler.plan.admission import plan_admission, token_budget
from reconciler.plan.cleanup import pending_cleanup
from reconciler.plan.cost import PriceTable, default_price_table, project_price_table
from reconciler.plan.guardrails import evaluate_guardrails
from reconciler.plan.limits import ServiceLimits, resolve_limits
from reconciler.plan.rules import REFRESH_ONLY_KINDS, decide
from reconciler.plan.situation import Context, Situation, situation, tag_index
from reconciler.state.document import AttemptPurpose, State
from reconciler.state.results_check import ResultsCheck

EMPTY_KEY_DIGESTS: Mapping[str, Mapping[str, str]] = MappingProxyType({})
EMPTY_RESULTS_CHECKS: Mapping[str, ResultsCheck] = MappingProxyType({})


def _refresh_only(s: Situation) -> Action | None:
    """The refresh-only action: the ladder's first adopt, refresh or collect, else a no-op for
    a recorded resource and nothing for one never applied.

    The diff is dropped: a refresh-only plan acts on no spec change, and listing them (with
    "forces replacement") under a refresh would promise what this apply will not do.
    """
    action = decide(s, REFRESH_ONLY_KINDS)
    if action is None and s.record is not None:
        action = builders.noop(s, Reason.UP_TO_DATE, attempt=s.number or None)
    return replace(action, diff=()) if action is not None else None


def _check_names(
    desired: Desired, state: State, targets: Sequence[str], force_replace: Sequence[str]
) -> None:
    known = set(desired.resources) | set(state.resources)
    unknown_targets = sorted(set(targets) - known)
    if unknown_targets:
        raise PlanError(f"--target names no resource in the manifests or state: {unknown_targets}")
    unknown_replace = sorted(set(force_replace) - set(desired.resources))
    if unknown_replace:
        raise PlanError(f"--replace names no resource in the manifests: {unknown_replace}")


def key_digests_wanted(
    desired: Desired, state: State, force_replace: Collection[str] = ()
) -> frozenset[str]:
    """The resources whose recorded key digests (`previous_key_digests`) the plan may read: the
    caller loads only these, one blob each, rather than one per record on every plan.

    The plan reads a resource's digests only to list its changed requests and size an
    incremental run: when its source changed (the spec hash covers the source content, so an
    equal hash means equal digests and nothing to list), when `--replace` names it, or when
    an attempt of it runs incrementally (its lost create or a resubmission is sized from
    them). Every other resource plans the same with its digests left out.
    """
    forced = set(force_replace)
    wanted = set()
    for name, record in state.resources.items():
        resource = desired.resources.get(name)
        if resource is None or record.key_digests_ref is None:
            continue
        if (
            resource.spec_hash != record.spec_hash
            or name in forced
            or any(a.purpose is AttemptPurpose.INCREMENTAL for a in record.attempts)
        ):
            wanted.add(name)
    return frozenset(wanted)


def make_plan(
    desired: Desired,
    state: State,
    live: Live,
    *,
    created_at: datetime,
    previous_key_digests: Mapping[str, Mapping[str, str]] = EMPTY_KEY_DIGESTS,
    targets: Sequence[str] = (),
    force_replace: Sequence[str] = (),
    refresh_only: bool = False,
    destroy: bool = False,
    results_checks: Mapping[str, ResultsCheck] = EMPTY_RESULTS_CHECKS,
    prices: PriceTable | None = None,
    guardrails: Guardrails | None = None,
    limits: ServiceLimits | None = None,
    cleanup: Cleanup | None = None,
) -> Plan:
    """Decide one action per resource (DESIGN §5) and total them up.

    Args:
        previous_key_digests: per resource, the request-key index of the source last applied
            (loaded by the caller from `ResourceRecord.key_digests_ref`, for the resources
            `key_digests_wanted` names); enables request-level diffs and incremental re-runs.
            Missing entries just mean "not known".
        targets: restrict the plan to these resources (`--target`); empty means all.
        force_replace: resources to replace even if unchanged (`--replace`).
        refresh_only: plan only adopt/refresh/collect, never a create, replace or cancel.
        destroy: `reconciler destroy`: `desired` is empty, and cancels and forgets say why.
        results_checks: per resource, how its saved local results drifted on disk (observed by
            the caller with `state.results_check.check_local_results`); missing means intact.
        prices: the price table (default: the shipped one, without project overrides).
        guardrails: limits to check; violations are recorded in `Plan.violations`.
        limits: the service's quotas (plan.limits): enqueued tokens per model in
            `Plan.admission`, and a job larger than its model's limit is a violation. None:
            only the concurrent-job limit of `guardrails` is counted.
        cleanup: what apply deletes after collecting; the files of collected attempts it has
            left to delete become `Plan.cleanup`. None: none planned (`plan_now` passes the
            project's settings; every plan apply runs is made there).

    Raises:
        PlanError: a target or a forced replace names no resource.
    """
    _check_names(desired, state, targets, force_replace)
    table = prices if prices is not None else default_price_table()
    ctx = Context(
        live=live,
        tagged=tag_index(live, state),
        previous_key_digests=previous_key_digests,
        prices=table,
        force_replace=frozenset(force_replace),
        tombstones=state.tombstones,
        destroying=destroy,
        results_checks=results_checks,
    )
    scope = sorted(set(targets) if targets else set(desired.resources) | set(state.resources))
    actions: list[Action] = []
    for name in scope:
        facts = situation(ctx, name, desired.resources.get(name), state.resources.get(name))
        if refresh_only:
            planned = _refresh_only(facts)
            if planned is not None:
                actions.append(planned)
            continue
        planned = decide(facts)
        # The ladder ends in catch-alls for every resource that is desired, recorded or both.
        assert planned is not None, f"no rule decided {name}"
        actions.append(planned)
    frozen = tuple(actions)
    summary = summarise(frozen, price_table_as_of=table.stamp)
    checks = guardrails or Guardrails()
    violations = evaluate_guardrails(frozen, summary, checks, limits)
    tokens = (
        token_budget(frozen, live, state, limits, desired.resources) if limits is not None else None
    )
    admission = plan_admission(
        frozen,
        live,
        desired.resources,
        checks.max_concurrent_jobs,
        tokens,
        limits.storage_bytes if limits is not None else None,
    )
    return Plan(
        created_at=created_at,
        state_lineage=state.lineage,
        state_serial=state.serial,
        manifests_sha256=desired.manifests_sha256,
        actions=frozen,
        summary=summary,
        violations=violations,
        targets=tuple(sorted(targets)),
        force_replace=tuple(sorted(force_replace)),
        refresh_only=refresh_only,
        admission=admission,
        # A destroy forgets the records: apply's sweep finds nothing of theirs left to delete.
        cleanup=() if destroy or cleanup is None else pending_cleanup(state, cleanup, targets),
    )


def plan_now(
    config: ProjectConfig,
    desired: Desired,
    state: State,
    live: Live,
    *,
    now: datetime,
    previous_key_digests: Mapping[str, Mapping[str, str]] = EMPTY_KEY_DIGESTS,
    targets: Sequence[str] = (),
    force_replace: Sequence[str] = (),
    refresh_only: bool = False,
    destroy: bool = False,
    results_checks: Mapping[str, ResultsCheck] = EMPTY_RESULTS_CHECKS,
) -> Plan:
    """The plan of this project at `now`: `make_plan` with the project's price table (its
    endpoint's shipped prices plus `prices` overrides) and its guardrails.

    Every caller that plans for a project (`plan`, `apply`, apply's converge loop) goes through
    here, so no plan is priced or checked differently from the one a reviewer saw. Still pure:
    `now` becomes `Plan.created_at`, and the caller loads `previous_key_digests`.

    Raises:
        PlanError: a target or a forced replace names no resource.
    """
    made = make_plan(
        desired,
        state,
        live,
        created_at=now,
        previous_key_digests=previous_key_digests,
        targets=targets,
        force_replace=force_replace,
        refresh_only=refresh_only,
        destroy=destroy,
        results_checks=results_checks,
        prices=project_price_table(config.endpoint, config.prices),
        guardrails=config.guardrails,
        limits=resolve_limits(config),
        cleanup=config.cleanup,
    )
    return replace(made, settings_sha256=settings_sha256(config))


_PACING_SETTINGS = frozenset({"parallelism", "poll", "manifests", "state"})
"""Settings that change how fast apply works, not what it does (the manifests and the state
are bound to a saved plan by their own checks)."""


def settings_sha256(config: ProjectConfig) -> str:
    """The digest of the settings a saved plan was approved under: the endpoint and Vertex
    target (which service and project the jobs go to), `cleanup` (what is deleted), `limits`,
    guardrails, prices, the output root. A plan reviewed for one of them must not be applied
    under another. The config holds no secret (keys come from the environment)."""
    steering = config.model_dump(mode="json", exclude=set(_PACING_SETTINGS))
    return hashlib.sha256(json.dumps(steering, sort_keys=True).encode()).hexdigest()
