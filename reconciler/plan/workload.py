"""What a job-creating action would run: requests, bytes, jobs, and the token and cost estimate.

Pure arithmetic over the desired resource and the recorded attempts; the planner's rules decide
*whether* a job is created, this module only says *how much* it would send and cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.manifests.desired import DesiredResource
from reconciler.plan.actions import RequestChanges
from reconciler.plan.cost import PriceTable, estimate_tokens
from reconciler.state.document import AttemptPurpose, JobAttempt, ResourceRecord


@dataclass(frozen=True, slots=True)
class Workload:
    """The workload fields of a job-creating action (copied onto `Action` by plan.builders)."""

    purpose: AttemptPurpose
    model: str
    jobs: int
    """Jobs it would create: the input's shard count, or how many shards run again alone."""
    requests: int
    reused_requests: int
    """Requests whose previous results are kept instead of run again (rerun: changed)."""
    bytes: int
    estimated_input_tokens: int
    estimated_cost_usd: float | None
    shards_to_create: tuple[int, ...] = ()
    """The shards of the attempt to (re)create alone; empty: every shard."""
    max_output_tokens: int | None = None
    """At most this many output tokens (thinking included), from the requests'
    `maxOutputTokens`; None: a request sets none."""
    max_output_cost_usd: float | None = None
    """What `max_output_tokens` would cost at the batch output price; None: unbounded/unpriced."""
    tokens_counted: bool = False
    """`estimated_input_tokens` was counted by the local tokenizer, not estimated from bytes."""


def _priced(
    prices: PriceTable,
    resource: DesiredResource,
    purpose: AttemptPurpose,
    *,
    jobs: int,
    requests: int,
    n_bytes: int,
    reused: int = 0,
    shards: tuple[int, ...] = (),
) -> Workload:
    """A workload with the token and cost estimate for `n_bytes` of input, and the output
    bound of its `requests` (in proportion for a partial run)."""
    counted = resource.source.counted_input_tokens
    total = resource.source.request_count
    if counted is None:
        tokens = estimate_tokens(n_bytes)
    else:  # counted before planning; a partial run's share in proportion
        tokens = counted if requests >= total or total == 0 else -(-counted * requests // total)
    model = resource.manifest.spec.model
    bound = resource.source.max_output_tokens
    if bound is not None and requests < total:
        bound = -(-bound * requests // total)
    return Workload(
        purpose=purpose,
        model=model,
        jobs=jobs,
        requests=requests,
        reused_requests=reused,
        bytes=n_bytes,
        estimated_input_tokens=tokens,
        estimated_cost_usd=prices.batch_input_cost(model, tokens),
        shards_to_create=shards,
        max_output_tokens=bound,
        max_output_cost_usd=None if bound is None else prices.batch_output_cost(model, bound),
        tokens_counted=counted is not None,
    )


def shard_count(resource: DesiredResource, requests: int, n_bytes: int) -> int:
    """How many jobs `requests` requests of `n_bytes` split into under the manifest's limits
    (on Vertex, unset ones capped at Vertex's: `DesiredResource.shards`)."""
    return resource.shards.jobs_for(requests, n_bytes)


def attempt_workload(
    prices: PriceTable,
    resource: DesiredResource,
    record: ResourceRecord | None,
    purpose: AttemptPurpose,
    changes: RequestChanges | None,
) -> Workload:
    """A whole new attempt: every request, the failed ones, or the new and changed ones."""
    total = resource.source.request_count
    reused = 0
    match purpose:
        case AttemptPurpose.FULL:
            requests = total
        case AttemptPurpose.RETRY_FAILED:
            requests = record.results.failed if record and record.results else 0
        case AttemptPurpose.INCREMENTAL:
            requests = changes.to_run if changes else total
            reused = changes.unchanged if changes else 0
    # Partial runs send a subset of the lines; their size is estimated in proportion.
    n_bytes = (
        resource.source.bytes
        if requests >= total or total == 0
        else (resource.source.bytes * requests // total)
    )
    return _priced(
        prices,
        resource,
        purpose,
        jobs=shard_count(resource, requests, n_bytes),
        requests=requests,
        n_bytes=n_bytes,
        reused=reused,
    )


def shard_subset_workload(
    prices: PriceTable,
    resource: DesiredResource,
    group: Sequence[JobAttempt],
    subset: Sequence[JobAttempt],
    purpose: AttemptPurpose,
) -> Workload:
    """Re-creating only `subset` of a sharded attempt's jobs (`group`: every shard of it)."""
    total = resource.source.request_count
    # States written before request counts were recorded: assume equal shards.
    even = -(-total // max(len(group), 1))
    requests = sum(a.request_count if a.request_count is not None else even for a in subset)
    return _priced(
        prices,
        resource,
        purpose,
        jobs=len(subset),
        requests=requests,
        n_bytes=resource.source.bytes * requests // total if total else 0,
        shards=tuple(a.shard or 0 for a in subset),
    )
