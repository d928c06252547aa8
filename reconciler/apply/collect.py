"""The collect stage: once an attempt's jobs have settled, download their results (files or
inline responses), merge them in shard order (into the previous copy for a partial attempt),
write the durable copy, and record where it is.

A shard given up for good (policy will not run it again) contributes an error line per request,
so its siblings' results are still collected and every request has an outcome.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.apply.cleanup import clean_later, mark_left_to_expire, report_left_to_expire
from reconciler.apply.context import ApplyContext, crash_point
from reconciler.apply.events import EventKind, Phase
from reconciler.apply.files import atomic_file, iter_jsonl_lines, temp_beside
from reconciler.apply.inputs import inline_source_lines, keys_in_order
from reconciler.apply.merging import merge_results
from reconciler.apply.outputs import (
    OutputTarget,
    WrittenResults,
    can_keep_in_place,
    keep_downloaded,
    previous_results,
    write_results,
)
from reconciler.apply.records import with_live_state
from reconciler.apply.sources import shard_input
from reconciler.apply.summary import ResultsFollower, UsageSum
from reconciler.errors import PermanentServiceError, ReconcilerError
from reconciler.live.snapshot import InlineResult, Live, LiveJob
from reconciler.manifests.desired import DesiredResource
from reconciler.manifests.model import Task
from reconciler.plan.actions import Action, Reason
from reconciler.plan.cost import PriceTable, project_price_table
from reconciler.state.document import (
    AttemptPurpose,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
)
from reconciler.state.request_keys import load_request_keys

_RPC_CODE = {JobState.FAILED: 13, JobState.EXPIRED: 4, JobState.CANCELLED: 1}
"""google.rpc.Code of a given-up shard's request lines: INTERNAL, DEADLINE_EXCEEDED, CANCELLED."""

Fetched = Path | list[dict[str, Any]] | None
"""One shard's results: a downloaded part file, result lines, or None (not downloadable yet)."""


async def collect(context: ApplyContext, action: Action, live: Live) -> None:
    """Record how the attempt's jobs ended; if they succeeded, collect and record the results."""
    name = action.resource
    record = context.store.state.resources[name]
    number = action.attempt or record.current_number
    group = record.attempt_group(number)
    jobs = {a.job_name: live.jobs.get(a.job_name or "") for a in group}

    def settle(record: ResourceRecord) -> ResourceRecord:
        for job in jobs.values():
            if job is not None:
                record = with_live_state(record, job)
        return record

    await context.store.update_record(name, settle)
    # Shards that ended badly for good (action.shards_given_up): their requests become failed lines.
    given_up = [a for a in group if a.shard is not None and a.shard in action.shards_given_up]
    needed = [jobs[a.job_name] for a in group if a not in given_up]
    if any(job is None or job.state is not JobState.SUCCEEDED for job in needed):
        ended = sorted({job.state.value for job in jobs.values() if job is not None})
        context.emit(EventKind.STEP, name, f"attempt {number} ended {'/'.join(ended)}")
        context.phase(name, Phase.ENDED, f"attempt {number} ended {'/'.join(ended)}")
        return
    resource = context.desired.resources.get(name)
    if resource is None:
        return
    if action.reason is Reason.RESULTS_DRIFTED:
        await _require_at_service(context, record, [job for job in needed if job is not None])
    failed_lines = {
        a.shard: await _given_up_lines(context, resource, a, len(group), jobs[a.job_name])
        for a in given_up
    }
    try:
        collected = await _download_and_write(context, resource, record, group, jobs, failed_lines)
    except UnprovenResponses as unproven:
        await context.store.update_record(name, unproven.mark)
        raise
    if collected is None:
        return
    written, usage = collected
    crash_point("results-written")
    collected_at = context.clock.now()
    previous = record.results.from_attempts if record.results else ()
    partial = group[0].purpose is not AttemptPurpose.FULL
    config = context.project.config
    prices = project_price_table(config.endpoint, config.prices)
    in_group = {a.job_name for a in group}
    left_to_expire: list[str] = []

    def record_results(record: ResourceRecord) -> ResourceRecord:
        results = ResultsRecord(
            location=written.location,
            sha256=written.sha256,
            bytes=written.bytes,
            succeeded=written.succeeded,
            failed=written.failed,
            collected_at=collected_at,
            from_attempts=(*previous, number) if partial else (number,),
        )
        # A job's usage is recorded once: restoring drifted results later downloads the same
        # lines again, and keeps the cost at the prices of the first collection.
        attempts = tuple(
            _with_usage(a, usage[a.job_name], resource, prices, collected_at)
            if a.job_name in usage and a.usage is None
            else a
            for a in record.attempts
        )
        # Results files the service refuses to delete are recorded as left to expire with the
        # results: the cleanup then sends no delete known to fail.
        marked = [
            mark_left_to_expire(a, config.cleanup) if a.job_name in in_group else a
            for a in attempts
        ]
        left_to_expire[:] = [
            m.output_file
            for a, m in zip(attempts, marked, strict=True)
            if m is not a and m.output_file
        ]
        return record.model_copy(update={"results": results, "attempts": tuple(marked)})

    await context.store.update_record(name, record_results)
    context.emit(
        EventKind.STEP,
        name,
        f"collected {written.succeeded} result(s), {written.failed} failed, to {written.location}",
    )
    report_left_to_expire(context, name, left_to_expire)
    context.phase(name, Phase.COLLECTED, f"{written.succeeded} ok, {written.failed} failed")
    clean_later(context, name, number)


def _with_usage(
    attempt: JobAttempt,
    usage: UsageSum,
    resource: DesiredResource,
    prices: PriceTable,
    collected_at: datetime,
) -> JobAttempt:
    """`attempt` with the tokens its results reported and what they cost on its model."""
    model = attempt.model or resource.manifest.spec.model
    tokens = usage.token_usage().model_copy(update={"model": model})
    return attempt.model_copy(
        update={
            "usage": tokens,
            "cost_usd": prices.batch_usage_cost(model, tokens),
            "collected_at": collected_at,
        }
    )


async def _require_at_service(
    context: ApplyContext, record: ResourceRecord, jobs: Sequence[LiveJob]
) -> None:
    """Before restoring drifted results: every results file they come from is still at the
    service (they expire 48 hours after the job ended), or a clear error naming the way out.

    Raises:
        ReconcilerError: a results file is gone; nothing was written.
    """
    location = record.results.location if record.results else "(unknown)"
    for job in jobs:
        if job.output_file and await context.adapter.get_file(job.output_file) is None:
            raise ReconcilerError(
                f"results at {location} are missing or changed on disk, and the service no "
                f"longer has {job.output_file}; run `reconciler apply --replace {record.name}` "
                "to run it again"
            )


async def _given_up_lines(
    context: ApplyContext,
    resource: DesiredResource,
    shard: JobAttempt,
    shards: int,
    job: LiveJob | None,
) -> list[dict[str, Any]]:
    """An error line for every request of a shard that will not run again."""
    keys: list[str]
    if shard.request_keys_file is not None:
        stored = await asyncio.to_thread(
            load_request_keys, context.store.backend, shard.request_keys_file
        )
        keys = stored or []
    else:  # a state written before shards' keys were stored: split the source again
        staging = context.staging(resource.name) / f"given-up-{shard.number}"
        prepared = await shard_input(context, resource, shard, shards, staging)
        shutil.rmtree(staging, ignore_errors=True)
        keys = list(prepared.keys or ())
    state = job.state if job is not None else shard.state
    message = (
        f"not run: batch job {shard.job_name} (shard {shard.shard}) ended {state.value} "
        "and was not resubmitted"
    )
    code = _RPC_CODE.get(state, 2)
    context.emit(
        EventKind.WARNING,
        resource.name,
        f"{len(keys)} request(s) of shard {shard.shard} recorded as failed: "
        f"its job ended {state.value}",
    )
    return [{"key": key, "error": {"code": code, "message": message}} for key in keys]


async def _download_and_write(
    context: ApplyContext,
    resource: DesiredResource,
    record: ResourceRecord,
    group: Sequence[JobAttempt],
    jobs: Mapping[str | None, LiveJob | None],
    failed_lines: Mapping[int | None, list[dict[str, Any]]],
) -> tuple[WrittenResults, dict[str, UsageSum]] | None:
    """The attempt's results written to the output, and the tokens each job's results reported
    (by job name); None if one is not downloadable yet."""
    staging = context.staging(resource.name) / f"collect-{group[0].number}"
    target = context.output(resource)
    only = jobs[group[0].job_name] if len(group) == 1 and not failed_lines else None
    if (
        only is not None
        and only.output_file
        and group[0].purpose is AttemptPurpose.FULL
        and can_keep_in_place(target)
    ):
        written = await _download_in_place(context, resource, only.output_file, target)
        if staging.exists():  # a merge an earlier run left unfinished
            shutil.rmtree(staging, ignore_errors=True)
        if written is None:
            return None
        return written, {only.name: written.usage}
    staging.mkdir(parents=True, exist_ok=True)
    # Shards download concurrently (bounded like every other step); merged in shard order.
    gate = asyncio.Semaphore(max(1, context.options.parallelism))

    async def fetch(attempt: JobAttempt) -> Fetched:
        if attempt.shard in failed_lines:
            return failed_lines[attempt.shard]
        job = jobs[attempt.job_name]
        assert job is not None
        async with gate:
            if not job.output_file:
                return await _inline_lines(context, resource, attempt, job)
            part = staging / f"part-{attempt.shard or 0}-{attempt.rerun}.jsonl"
            measured = await _download_when_ready(context, resource.name, job.output_file, part)
            return None if measured is None else part

    fetched = await asyncio.gather(*(fetch(attempt) for attempt in group))
    if any(item is None for item in fetched):
        return None
    crash_point("results-downloaded")
    partial = group[0].purpose is not AttemptPurpose.FULL
    usage = [UsageSum() for _ in fetched]
    written = await asyncio.to_thread(
        _write, context, resource, record, target, fetched, usage, staging, partial=partial
    )
    shutil.rmtree(staging, ignore_errors=True)
    by_job = {
        attempt.job_name: used
        for attempt, used in zip(group, usage, strict=True)
        if attempt.job_name and attempt.shard not in failed_lines
    }
    return written, by_job


def _write(
    context: ApplyContext,
    resource: DesiredResource,
    record: ResourceRecord,
    target: OutputTarget,
    fetched: Sequence[Fetched],
    usage: Sequence[UsageSum],
    staging: Path,
    *,
    partial: bool,
) -> WrittenResults:
    """Write the fetched shards to the target; a partial attempt's lines replace their keys'
    lines in the previous copy, and requests no longer in the source are left out. `usage`
    (one per fetched shard) gets the tokens each shard's lines report, summed as they pass:
    the written copy's own sum mixes shards, and a merged copy's holds old lines too."""

    def new_lines() -> Iterator[bytes | dict[str, Any]]:
        # In shard order: a downloaded part, inline responses, or a given-up shard's lines.
        for item, used in zip(fetched, usage, strict=True):
            if isinstance(item, Path):
                for raw in iter_jsonl_lines(item):
                    used.add_raw(raw)
                    yield raw
            elif item is not None:
                for line in item:
                    if line.get("error") is None and line.get("status") is None:
                        used.add_line(line)
                    yield line

    if partial and record.results is not None:
        current = resource.source.key_digests
        location = record.results.location
        with previous_results(
            location, context.project.root, context.staging(resource.name)
        ) as previous_path:
            merged = merge_results(
                iter_jsonl_lines(previous_path) if previous_path else iter(()),
                new_lines(),
                staging / "merge",
                keep=current.__contains__ if current else None,
            )
            return write_results(merged, target, staging / "gcs")
    return write_results(new_lines(), target, staging / "gcs")


async def _download_in_place(
    context: ApplyContext, resource: DesiredResource, file_name: str, target: OutputTarget
) -> WrittenResults | None:
    """One job's whole results straight into a temp file beside the output, then renamed.

    The common case (one job, a local file output) so costs one download and one read:
    no staging copy, and the hash the download computed is the output's.
    """
    assert target.local_path is not None
    # A mkdir and a mkstemp: microseconds on the loop, where a thread hop costs ~0.15 ms.
    downloaded = temp_beside(target.local_path)
    # A large file is hashed and summarised by a second process as it arrives.
    follower = ResultsFollower()
    try:
        measured = await _download_when_ready(
            context, resource.name, file_name, downloaded, follower
        )
        if measured is None:
            return None
        crash_point("results-downloaded")
        return await asyncio.to_thread(
            keep_downloaded, downloaded, target, *measured, summary=follower.summary
        )
    finally:
        if follower.following:  # stopping a second process waits for it: in a thread
            await asyncio.to_thread(follower.abandon)
        downloaded.unlink(missing_ok=True)


async def _download_when_ready(
    context: ApplyContext,
    resource: str,
    file_name: str,
    dest: Path,
    follower: ResultsFollower | None = None,
) -> tuple[str, int] | None:
    """Download a results file, returning its (sha256, bytes); None if it is still not
    downloadable (as right after SUCCEEDED) when the retry window closes."""
    clock = context.clock
    deadline = clock.monotonic() + context.options.results_retry_seconds
    delay = 0.5
    while True:
        try:
            return await context.adapter.download_file(
                file_name,
                dest,
                follower=follower,
                progress=context.transfer_progress(resource, Phase.DOWNLOADING, file_name),
            )
        except PermanentServiceError as exc:
            if exc.status_code not in (403, 404):
                raise
            if clock.monotonic() >= deadline:
                context.emit(
                    EventKind.WARNING,
                    resource,
                    f"results file {file_name} is not downloadable yet; the next apply collects it",
                )
                return None
        await clock.sleep(context.rng.uniform(delay / 2, delay))
        delay = min(10.0, delay * 2)


async def _sent_keys(
    context: ApplyContext, resource: DesiredResource, attempt: JobAttempt
) -> list[str]:
    """The keys a job sent, in order: stored for a shard or subset, else the whole source."""
    if attempt.request_keys_file:
        stored = await asyncio.to_thread(
            load_request_keys, context.store.backend, attempt.request_keys_file
        )
        return stored or []
    if resource.manifest.spec.source.requests is not None:
        return [line["key"] for line in inline_source_lines(resource)]
    return await asyncio.to_thread(keys_in_order, resource, context.project.root)


class UnprovenResponses(ReconcilerError):
    """Inline responses came back without the keys that prove which request each answers."""

    def __init__(self, attempt: JobAttempt, unproven: int, total: int, kept: str) -> None:
        super().__init__(
            f"{unproven} of {total} inline response(s) of {attempt.job_name} came back without "
            f"the key sent in their metadata, so which request each answers cannot be proven; "
            f"nothing was written under a guessed key (raw responses kept in {kept}); policy "
            "may resubmit it, or run it as a file job, whose result lines always carry their key"
        )
        self.attempt = attempt

    def mark(self, record: ResourceRecord) -> ResourceRecord:
        """`record` with this job's results recorded as unusable (it then counts as FAILED)."""
        reason = "inline responses came back without their keys"
        attempts = tuple(
            a.model_copy(update={"results_unusable": reason})
            if a.job_name == self.attempt.job_name
            else a
            for a in record.attempts
        )
        return record.model_copy(update={"attempts": attempts})


def _keep_unmatched(
    context: ApplyContext, resource: str, job: LiveJob, results: Sequence[InlineResult]
) -> str:
    """Write a job's raw inline responses, in the service's order, where the user can read
    them; the path, relative to the project root."""
    folder = context.project.path(".reconciler/unmatched")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{resource}-{job.name.rsplit('/', 1)[-1]}.jsonl"
    with atomic_file(path) as handle:
        for result in results:
            line: dict[str, Any] = {"index": result.index, "key": result.key}
            if result.error is not None:
                line["error"] = {"code": result.error.code, "message": result.error.message}
            else:
                line["response"] = result.response
            handle.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
    return str(path.relative_to(context.project.root.resolve()))


async def _inline_lines(
    context: ApplyContext, resource: DesiredResource, attempt: JobAttempt, job: LiveJob
) -> list[dict[str, Any]]:
    """Inline responses as result lines under the keys their metadata proves.

    Generate requests carry their key in `metadata`, which the service echoes. A response
    without it (python-genai #1909: reordered, metadata dropped) proves nothing about which
    request it answers, so none of the job's responses is written: guessing by position put
    7 of 8 answers under the wrong keys. Only a single response to a single request needs no
    proof. Embed jobs carry no metadata at all; the service answers them in request order.

    Raises:
        UnprovenResponses: a generate response came back without a key that was sent.
    """
    results = await context.adapter.inline_results(job.name)
    sent = await _sent_keys(context, resource, attempt)
    proven = resource.manifest.spec.task is Task.EMBED or len(sent) == len(results) == 1
    known = set(sent)
    unproven = sum(1 for r in results if r.key is None or r.key not in known)
    if unproven and not proven:
        kept = await asyncio.to_thread(_keep_unmatched, context, resource.name, job, results)
        raise UnprovenResponses(attempt, unproven, len(results), kept)
    lines: list[dict[str, Any]] = []
    for result in results:
        key = result.key
        if key is None or key not in known:
            key = sent[result.index] if result.index < len(sent) else f"index-{result.index}"
        line: dict[str, Any] = {"key": key}
        if result.error is not None:
            line["error"] = {"code": result.error.code, "message": result.error.message}
        else:
            line["response"] = result.response
        lines.append(line)
    if len(results) != len(sent):
        context.emit(
            EventKind.WARNING,
            resource.name,
            f"{len(sent)} request(s) sent but {len(results)} response(s) returned",
        )
    return lines
