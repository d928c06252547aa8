"""Apply: carry out a Plan, then (with wait) poll and re-plan until every job settles.

Every action runs as its own task under a semaphore (bounded concurrency); a failure is recorded
for its resource and the others go on. The state is saved after every step that changes the
world, in this order for a job: intent (before the create call) -> job created -> job settled ->
results collected. A crash at any point leaves a state from which the next run converges: an
intent whose job exists is adopted by its identity tag, never created twice.

While waiting, each round is one paginated `list` of the service's jobs and one pure re-plan;
only follow-up actions (collect, adopt, refresh, resubmit and recreate per policy) are carried
out, never a create or cancel the user did not approve.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, assert_never

from reconciler.apply.events import Event, EventKind, Reporter
from reconciler.apply.inputs import (
    PreparedInput,
    inline_source_lines,
    keys_in_order,
    prepare_inputs,
)
from reconciler.apply.outputs import (
    OutputTarget,
    ResultsFollower,
    WrittenResults,
    can_keep_in_place,
    iter_jsonl_lines,
    keep_downloaded,
    merge_results,
    read_results,
    resolve_output,
    temp_beside,
    write_results,
)
from reconciler.apply.store import StateStore
from reconciler.clock import Clock
from reconciler.config import Project
from reconciler.errors import (
    ApplyError,
    PermanentServiceError,
    ReconcilerError,
    ServiceError,
    StateError,
    TransientServiceError,
)
from reconciler.live.gemini import GeminiAdapter
from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import IdentityTag, parse_tag
from reconciler.manifests.desired import Desired, DesiredResource
from reconciler.manifests.model import Task
from reconciler.manifests.requests import camel
from reconciler.plan.actions import Action, ActionKind, Plan
from reconciler.plan.cost import parse_size
from reconciler.plan.planner import make_plan
from reconciler.state.document import (
    AttemptPurpose,
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
)

logger = logging.getLogger(__name__)

CRASH_HOOK_ENV = "RECONCILER_TEST_CRASH_AT"
"""Kill tests name a step here; the process SIGKILLs itself right after that step."""

KEY_DIGESTS_BLOB = "key-digests"
FOLLOW_UP_KINDS = frozenset(
    {
        ActionKind.COLLECT,
        ActionKind.ADOPT,
        ActionKind.REFRESH,
        ActionKind.RESUBMIT,
        ActionKind.RECREATE,
    }
)
_UPLOAD_REUSE_MARGIN = timedelta(hours=2)
"""An uploaded input is reused only if it outlives the job's likely queue time by this much."""


def crash_point(name: str) -> None:
    """Die here, as a `kill -9` would, when the kill tests ask for it."""
    if os.environ.get(CRASH_HOOK_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    wait: bool = True
    timeout_seconds: float | None = None
    parallelism: int = 8
    prune: bool = False
    targets: tuple[str, ...] = ()
    results_retry_seconds: float = 60.0
    """How long a results file that is not downloadable yet (right after SUCCEEDED) is retried."""


@dataclass
class ApplyReport:
    """What a run did: one line per step, and the resources that failed."""

    steps: list[str] = field(default_factory=list)
    failures: dict[str, ReconcilerError] = field(default_factory=dict)
    unsettled: list[str] = field(default_factory=list)
    """Resources still running when apply stopped waiting (timeout or --no-wait)."""


class Executor:
    """Carries out plans against the service for one project."""

    def __init__(
        self,
        *,
        project: Project,
        desired: Desired,
        adapter: GeminiAdapter,
        store: StateStore,
        clock: Clock,
        reporter: Reporter,
        options: ApplyOptions,
        rng: random.Random | None = None,
    ) -> None:
        self._project = project
        self._desired = desired
        self._adapter = adapter
        self._store = store
        self._clock = clock
        self._reporter = reporter
        self._options = options
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(max(1, options.parallelism))
        self._media_uris: dict[str, tuple[str, str]] = {}
        self._media_lock = asyncio.Lock()
        self._live: Live | None = None
        self.report = ApplyReport()

    # -- the run -------------------------------------------------------------------------------

    async def run(self, plan: Plan) -> ApplyReport:
        """Execute `plan`; with wait, converge until every job settles or the timeout passes.

        Raises:
            ApplyError: one or more resources failed (the others were carried out).
        """
        started = self._clock.monotonic()
        needs_files = any(a.kind.creates_job for a in plan.actions)
        self._live = await self._adapter.snapshot(include_files=needs_files)
        await self._execute(plan.actions)
        if self._options.wait:
            await self._converge(started)
        else:
            self.report.unsettled = self._unsettled(self._store.state)
        if self.report.failures:
            raise ApplyError(self.report.failures)
        return self.report

    async def _execute(self, actions: Sequence[Action]) -> None:
        async with asyncio.TaskGroup() as group:
            for action in actions:
                if action.kind is ActionKind.NOOP and not action.diff:
                    continue
                if action.resource in self.report.failures:
                    continue
                group.create_task(self._guarded(action))

    async def _guarded(self, action: Action) -> None:
        async with self._semaphore:
            try:
                await self._dispatch(action)
            except ReconcilerError as exc:
                self.report.failures[action.resource] = exc
                self._emit(EventKind.FAILED, action.resource, str(exc))
            except OSError as exc:
                error = ReconcilerError(f"{action.kind.value} failed: {exc}")
                self.report.failures[action.resource] = error
                self._emit(EventKind.FAILED, action.resource, str(error))

    async def _converge(self, started: float) -> None:
        delay = self._project.config.poll.initial_seconds
        max_delay = self._project.config.poll.max_seconds
        timeout = self._options.timeout_seconds
        while True:
            live = await self._adapter.snapshot(include_files=False)
            self._live = live
            plan = make_plan(
                self._desired,
                self._store.state,
                live,
                created_at=self._clock.now(),
                previous_key_digests=self.load_key_digests(self._store.state),
                targets=self._options.targets,
            )
            follow_ups = [
                a
                for a in plan.actions
                if a.kind in FOLLOW_UP_KINDS and a.resource not in self.report.failures
            ]
            acting = [a for a in follow_ups if a.kind is not ActionKind.REFRESH]
            await self._execute(follow_ups)
            running = self._unsettled(self._store.state)
            elapsed = self._clock.monotonic() - started
            counts = Counter(job.state.value for job in live.jobs.values() if self._is_ours(job))
            self._reporter.emit(
                Event(
                    EventKind.PROGRESS,
                    None,
                    f"{len(running)} job(s) still running",
                    counts=tuple(sorted(counts.items())),
                    elapsed_seconds=elapsed,
                )
            )
            if not running and not acting:
                self._fail_settled_without_results(plan)
                return
            if timeout is not None and elapsed >= timeout:
                self.report.unsettled = running
                self._emit(
                    EventKind.WARNING,
                    None,
                    f"stopped waiting after {timeout:g}s; still running: {', '.join(running)}. "
                    "The next `reconciler apply` collects them.",
                )
                return
            pause = self._rng.uniform(delay / 2, delay)
            if timeout is not None:
                pause = min(pause, max(0.0, timeout - elapsed))
            await self._clock.sleep(pause)
            delay = min(max_delay, delay * 2)

    def _fail_settled_without_results(self, plan: Plan) -> None:
        """A job that ended badly and will not run again is a failure of its resource, so CI
        goes red instead of reporting success with results missing."""
        for action in plan.actions:
            if action.kind is ActionKind.NOOP and action.reason.is_report:
                message = f"{action.detail}; not resubmitted because {action.reason.text}"
                self.report.failures.setdefault(action.resource, ReconcilerError(message))
                self._emit(EventKind.FAILED, action.resource, message)

    def _is_ours(self, job: LiveJob) -> bool:
        tag = parse_tag(job.display_name)
        return tag is not None and tag.resource in self._store.state.resources

    def _unsettled(self, state: State) -> list[str]:
        names = []
        for name, record in state.resources.items():
            if self._options.targets and name not in self._options.targets:
                continue
            if not record.attempts:
                continue
            group = record.attempt_group(record.current_number)
            if any(not a.state.is_terminal for a in group if a.job_name is not None):
                names.append(name)
        return sorted(names)

    # -- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self, action: Action) -> None:
        match action.kind:
            case ActionKind.CREATE | ActionKind.RECREATE | ActionKind.RESUBMIT:
                await self._create(action)
            case ActionKind.REPLACE:
                if action.cancel_first:
                    await self._cancel_jobs(action.resource, action.job_names)
                await self._create(action)
            case ActionKind.ADOPT:
                await self._adopt(action)
            case ActionKind.REFRESH:
                await self._refresh(action)
            case ActionKind.COLLECT:
                await self._collect(action)
            case ActionKind.UPDATE:
                await self._update(action)
            case ActionKind.CANCEL:
                await self._cancel_jobs(action.resource, action.job_names)
                crash_point("cancel-sent")
                await self._forget(action)
            case ActionKind.FORGET:
                await self._forget(action)
            case ActionKind.NOOP:
                await self._sync_fields(action.resource)
            case _:
                assert_never(action.kind)

    def _emit(self, kind: EventKind, resource: str | None, message: str) -> None:
        if kind is EventKind.STEP and resource:
            self.report.steps.append(f"{resource}: {message}")
        self._reporter.emit(Event(kind, resource, message))

    def _resource(self, name: str) -> DesiredResource:
        return self._desired.resources[name]

    def _staging(self, name: str) -> Path:
        path = self._project.path(".reconciler/staging") / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _output(self, resource: DesiredResource) -> OutputTarget:
        return resolve_output(
            resource.manifest.spec.output, self._project.root, self._project.config.output_root
        )

    # -- creating jobs -------------------------------------------------------------------------

    async def _create(self, action: Action) -> None:
        resource = self._resource(action.resource)
        number = action.next_attempt or 1
        purpose = action.purpose or AttemptPurpose.FULL
        if action.kind is not ActionKind.REPLACE and action.job_names:
            # A resubmit follows jobs that ended badly: record how they ended first.
            await self._record_live_states(action.resource, action.job_names)
        if action.shards_to_create:
            await self._rerun_shards(resource, number, purpose, action.shards_to_create)
            return
        only_keys = await self._keys_to_run(resource, purpose)
        if only_keys is not None and not only_keys:
            self._emit(EventKind.WARNING, resource.name, "no request needs a run; nothing created")
            return
        await self._upload_media(resource)
        staging = self._staging(resource.name) / f"attempt-{number}"
        inputs = await asyncio.to_thread(
            prepare_inputs,
            resource,
            self._project.root,
            staging,
            shards=max(1, action.jobs),
            only_keys=only_keys,
            media_uris=self._media_uris,
            max_bytes=_shard_max_bytes(resource),
        )
        if action.jobs and len(inputs) > action.jobs:
            self._emit(
                EventKind.WARNING,
                resource.name,
                f"split into {len(inputs)} jobs, not the {action.jobs} planned: its requests vary "
                "in size, and no input file may exceed shards.max_bytes",
            )
        digests_ref = await self._store_key_digests(resource)
        await self._store.update(
            lambda state: state.with_resource(self._record_for(state, resource, digests_ref))
        )
        await asyncio.gather(
            *(self._create_one(resource, number, purpose, prepared) for prepared in inputs)
        )
        if purpose is not AttemptPurpose.FULL or len(inputs) > 1:
            shutil.rmtree(staging, ignore_errors=True)

    async def _rerun_shards(
        self,
        resource: DesiredResource,
        number: int,
        purpose: AttemptPurpose,
        shards: Sequence[int],
    ) -> None:
        """Run these shards of attempt `number` again alone: each one that ended badly, went
        missing, or whose create never reached the service. Its siblings keep their jobs."""
        record = self._store.state.resources[resource.name]
        group = {a.shard: a for a in record.attempt_group(number)}
        missing = sorted(set(shards) - {s for s in group if s is not None})
        if missing:
            raise StateError(
                f"{resource.name}: attempt {number} records no shard {missing[0]}; plan again"
            )
        await self._upload_media(resource)
        staging = self._staging(resource.name) / f"attempt-{number}-rerun"
        runs = []
        for index in shards:
            previous = group[index]
            # A lost intent's tag is carried by no job, so it is reused; otherwise a new rerun.
            rerun = previous.rerun if previous.is_intent else previous.rerun + 1
            reused = await self._usable_file(previous.input_file)
            if reused is not None and previous.request_count is not None:
                prepared = PreparedInput(index, previous.request_count, None)
            else:
                reused = None
                prepared = await self._shard_input(resource, previous, len(group), staging)
            runs.append(
                self._create_one(
                    resource,
                    number,
                    purpose,
                    prepared,
                    rerun=rerun,
                    file_name=reused,
                    keys_ref=previous.request_keys_file,
                )
            )
        await asyncio.gather(*runs)
        shutil.rmtree(staging, ignore_errors=True)

    async def _shard_input(
        self, resource: DesiredResource, shard: JobAttempt, shards: int, staging: Path
    ) -> PreparedInput:
        """The input shard `shard` sent, written again from the source.

        Its request keys are stored beside the state; a state written before they were (a full
        run) splits the source the same way again, which gives the same shard.
        """
        index = shard.shard or 0
        keys: frozenset[str] | None = None
        if shard.request_keys_file is not None:
            backend = self._store.backend
            blob = await asyncio.to_thread(
                backend.get_blob, "request-keys", shard.request_keys_file
            )
            if blob is None:
                raise StateError(
                    f"{resource.name}: the request keys of shard {index} are missing from the "
                    f"state's storage (request-keys/{shard.request_keys_file})"
                )
            keys = frozenset(str(k) for k in json.loads(blob))
        elif shard.purpose is not AttemptPurpose.FULL:
            raise StateError(
                f"{resource.name}: shard {index} ran a subset of the requests that the state "
                "does not record; replace the resource (`--replace`) to run it again"
            )
        inputs = await asyncio.to_thread(
            prepare_inputs,
            resource,
            self._project.root,
            staging / f"shard-{index}",
            shards=1 if keys is not None else shards,
            only_keys=keys,
            media_uris=self._media_uris,
        )
        if keys is not None:
            return replace(inputs[0], shard=index)
        return next(item for item in inputs if item.shard == index)

    async def _usable_file(self, file_name: str | None) -> str | None:
        """`file_name` if the service still has it, active, and not about to expire."""
        if file_name is None:
            return None
        live_file = (
            self._live.files.get(file_name)
            if self._live is not None and self._live.files_listed
            else await self._adapter.get_file(file_name)
        )
        if (
            live_file is not None
            and live_file.state == "ACTIVE"
            and (
                live_file.expiration_time is None
                or live_file.expiration_time > self._clock.now() + _UPLOAD_REUSE_MARGIN
            )
        ):
            return live_file.name
        return None

    def _record_for(
        self, state: State, resource: DesiredResource, digests_ref: str | None
    ) -> ResourceRecord:
        """The resource's record brought to the desired spec, keeping its history."""
        existing = state.resources.get(resource.name)
        base = existing or ResourceRecord(name=resource.name, spec_hash=resource.spec_hash)
        return base.model_copy(
            update={
                "spec_hash": resource.spec_hash,
                "replacing": resource.replacing_fields(),
                "in_place": resource.in_place_fields(),
                "key_digests_ref": digests_ref or base.key_digests_ref,
            }
        )

    async def _keys_to_run(
        self, resource: DesiredResource, purpose: AttemptPurpose
    ) -> frozenset[str] | None:
        match purpose:
            case AttemptPurpose.FULL:
                return None
            case AttemptPurpose.RETRY_FAILED:
                record = self._store.state.resources[resource.name]
                return frozenset(await asyncio.to_thread(self._failed_keys, resource, record))
            case AttemptPurpose.INCREMENTAL:
                record = self._store.state.resources[resource.name]
                previous = self.load_key_digests(self._store.state).get(resource.name, {})
                current = resource.source.key_digests
                if not current or record.results is None:
                    return None
                return frozenset(k for k, d in current.items() if previous.get(k) != d)
            case _:
                assert_never(purpose)

    def _failed_keys(self, resource: DesiredResource, record: ResourceRecord) -> list[str]:
        if record.results is None:
            return []
        with self._previous_results(resource, record) as path:
            if path is None:
                return []
            return [
                str(line.get("key"))
                for line in read_results(path)
                if line.get("error") is not None or line.get("status") is not None
            ]

    @contextlib.contextmanager
    def _previous_results(
        self, resource: DesiredResource, record: ResourceRecord
    ) -> Iterator[Path | None]:
        """The last collected results copy as a local file (downloaded for gs:// outputs)."""
        assert record.results is not None
        location = record.results.location
        if not location.startswith("gs://"):
            path = self._project.root / location
            yield path if path.is_file() else None
            return
        from google.cloud import storage

        bucket_name, _, blob_name = location[len("gs://") :].partition("/")
        with tempfile.TemporaryDirectory(dir=self._staging(resource.name)) as tmp:
            path = Path(tmp) / "previous.jsonl"
            storage.Client().bucket(bucket_name).blob(blob_name).download_to_filename(str(path))
            yield path

    async def _store_key_digests(self, resource: DesiredResource) -> str | None:
        digests = resource.source.key_digests
        if not digests:
            return None
        data = json.dumps(dict(sorted(digests.items())), separators=(",", ":")).encode()
        address = hashlib.sha256(data).hexdigest()
        backend = self._store.backend
        await asyncio.to_thread(backend.put_blob, KEY_DIGESTS_BLOB, address, data)
        return address

    def load_key_digests(self, state: State) -> dict[str, dict[str, str]]:
        """Per resource, the request-key index of the source last applied (for the planner)."""
        backend = self._store.backend
        return load_key_digests(backend, state)

    async def _upload_media(self, resource: DesiredResource) -> None:
        """Upload every local media file a request references (once per content per run)."""
        async with self._media_lock:
            for media in resource.media:
                if media.path in self._media_uris:
                    continue
                live = await self._adapter.upload_file(
                    self._project.root / media.path,
                    display_name=f"rc-media-{media.sha256[:12]}",
                    mime_type=media.mime_type,
                )
                self._media_uris[media.path] = (live.uri or live.name, media.mime_type)
                self._emit(EventKind.STEP, resource.name, f"uploaded {media.path} as {live.name}")

    async def _create_one(
        self,
        resource: DesiredResource,
        number: int,
        purpose: AttemptPurpose,
        prepared: PreparedInput,
        *,
        rerun: int = 0,
        file_name: str | None = None,
        keys_ref: str | None = None,
    ) -> None:
        """Record the intent, then create one job (one shard) and record it.

        Args:
            rerun: which run of its shard this is within the attempt (0: the first).
            file_name: an input already at the service to send instead of `prepared.file`.
            keys_ref: the stored request keys it sends, when already stored.
        """
        spec = resource.manifest.spec
        tag = IdentityTag(resource.name, resource.spec_hash, number, prepared.shard, rerun)
        if file_name is None and prepared.file is not None:
            file_name = await self._upload_input(resource, prepared)
        now = self._clock.now()
        # A partial run or a shard records which keys it sends: results merge by them, and a
        # shard that fails is run again alone from them.
        if (
            keys_ref is None
            and prepared.keys is not None
            and (purpose is not AttemptPurpose.FULL or prepared.shard is not None)
        ):
            data = json.dumps(list(prepared.keys)).encode()
            keys_ref = hashlib.sha256(data).hexdigest()
            backend = self._store.backend
            await asyncio.to_thread(backend.put_blob, "request-keys", keys_ref, data)
        intent = JobAttempt(
            number=number,
            tag=str(tag),
            spec_hash=resource.spec_hash,
            purpose=purpose,
            shard=prepared.shard,
            rerun=rerun,
            request_count=prepared.request_count,
            input_file=file_name,
            state=JobState.UNKNOWN,
            intent_at=now,
            request_keys_file=keys_ref,
        )

        def add_intent(record: ResourceRecord) -> ResourceRecord:
            kept = tuple(
                a
                for a in record.attempts
                if (a.number, a.shard, a.rerun) != (number, prepared.shard, rerun)
            )
            return record.model_copy(update={"attempts": (*kept, intent)})

        await self._store.update_record(resource.name, add_intent)
        crash_point("intent-recorded")
        display_name = tag.display_name(spec.config.display_name)
        inline = (
            [dict(item) for item in prepared.inline_requests]
            if prepared.inline_requests is not None
            else None
        )
        try:
            job = await self._adapter.create_job(
                model=spec.model,
                task="embed" if spec.task is Task.EMBED else "generate",
                display_name=display_name,
                file_name=file_name,
                inline_requests=inline,
                batch_fields=batch_fields(spec.config.model_extra or {}),
            )
        except TransientServiceError as exc:
            if not getattr(exc, "ambiguous", False):
                raise
            # The create may have reached the service: look for the tag before anything else.
            found = await self._find_tagged(str(tag))
            if found is None:
                raise
            job = found
        crash_point("job-created")
        await self._store.update_record(
            resource.name,
            lambda record: _with_job(record, (number, prepared.shard, rerun), job, now),
        )
        crash_point("job-recorded")
        shard = f" shard {prepared.shard}" if prepared.shard is not None else ""
        if rerun:
            shard += f" run {rerun + 1}"
        self._emit(
            EventKind.STEP,
            resource.name,
            f"created {job.name} (attempt {number}{shard}, {prepared.request_count} request(s))",
        )

    async def _find_tagged(self, tag: str) -> LiveJob | None:
        live = await self._adapter.snapshot(include_files=False)
        for job in live.jobs.values():
            if job.display_name and job.display_name.endswith(tag):
                return job
        return None

    async def _upload_input(self, resource: DesiredResource, prepared: PreparedInput) -> str:
        """Upload the input file, or reuse the one uploaded before if it is still there."""
        assert prepared.file is not None
        whole = prepared.keys is None and not resource.media
        record = self._store.state.resources.get(resource.name)
        if whole and record is not None and record.input is not None:
            previous = record.input
            if previous.sha256 == resource.source.sha256:
                reused = await self._usable_file(previous.file_name)
                if reused is not None:
                    return reused
        uploaded = await self._adapter.upload_file(
            prepared.file,
            display_name=f"rc-{resource.name}-{resource.source.sha256[:12]}",
            mime_type="jsonl",
        )
        crash_point("input-uploaded")
        if whole:
            input_record = InputRecord(
                sha256=resource.source.sha256,
                bytes=resource.source.bytes,
                request_count=resource.source.request_count,
                file_name=uploaded.name,
                uploaded_at=self._clock.now(),
                expires_at=uploaded.expiration_time,
            )
            await self._store.update_record(
                resource.name, lambda r: r.model_copy(update={"input": input_record})
            )
        self._emit(EventKind.STEP, resource.name, f"uploaded input as {uploaded.name}")
        return uploaded.name

    # -- following jobs ------------------------------------------------------------------------

    async def _adopt(self, action: Action) -> None:
        resource = self._desired.resources.get(action.resource)
        live = self._live
        assert live is not None
        jobs = [live.jobs[name] for name in action.job_names if name in live.jobs]
        if resource is not None:
            digests_ref = await self._store_key_digests(resource)
            await self._store.update(
                lambda state: state.with_resource(self._record_for(state, resource, digests_ref))
            )
        now = self._clock.now()

        def adopt(record: ResourceRecord) -> ResourceRecord:
            for job in jobs:
                tag = parse_tag(job.display_name)
                if tag is None:
                    continue
                key = (tag.attempt, tag.shard, tag.rerun)
                existing = [a for a in record.attempts if (a.number, a.shard, a.rerun) == key]
                if not existing:
                    spec_hash = resource.spec_hash if resource else record.spec_hash
                    record = record.model_copy(
                        update={
                            "attempts": (
                                *record.attempts,
                                JobAttempt(
                                    number=tag.attempt,
                                    tag=str(tag),
                                    spec_hash=spec_hash,
                                    shard=tag.shard,
                                    rerun=tag.rerun,
                                    intent_at=job.create_time or now,
                                ),
                            )
                        }
                    )
                record = _with_job(record, key, job, job.create_time or now)
            return record

        await self._store.update_record(action.resource, adopt)
        self._emit(EventKind.STEP, action.resource, f"adopted {', '.join(action.job_names)}")

    async def _record_live_states(self, resource: str, job_names: Sequence[str]) -> None:
        """Copy the live state of these jobs into their recorded attempts."""
        live = self._live
        assert live is not None
        if resource not in self._store.state.resources:
            return

        def refresh(record: ResourceRecord) -> ResourceRecord:
            for name in job_names:
                job = live.jobs.get(name)
                if job is not None:
                    record = _with_live_state(record, job)
            return record

        await self._store.update_record(resource, refresh)

    async def _refresh(self, action: Action) -> None:
        await self._record_live_states(action.resource, action.job_names)
        await self._sync_fields(action.resource)

    async def _collect(self, action: Action) -> None:
        name = action.resource
        live = self._live
        assert live is not None
        record = self._store.state.resources[name]
        number = action.attempt or record.current_number
        group = record.attempt_group(number)
        jobs = {a.job_name: live.jobs.get(a.job_name or "") for a in group}

        def settle(record: ResourceRecord) -> ResourceRecord:
            for job in jobs.values():
                if job is not None:
                    record = _with_live_state(record, job)
            return record

        await self._store.update_record(name, settle)
        # Shards that ended badly for good (action.shards_given_up): their requests become failed lines.
        given_up = [a for a in group if a.shard is not None and a.shard in action.shards_given_up]
        needed = [jobs[a.job_name] for a in group if a not in given_up]
        if any(job is None or job.state is not JobState.SUCCEEDED for job in needed):
            ended = sorted({job.state.value for job in jobs.values() if job is not None})
            self._emit(EventKind.STEP, name, f"attempt {number} ended {'/'.join(ended)}")
            return
        resource = self._desired.resources.get(name)
        if resource is None:
            return
        failed_lines = {
            a.shard: await self._given_up_lines(resource, a, len(group), jobs[a.job_name])
            for a in given_up
        }
        written = await self._download_and_write(resource, record, group, jobs, failed_lines)
        if written is None:
            return
        crash_point("results-written")
        collected_at = self._clock.now()
        previous = record.results.from_attempts if record.results else ()
        partial = group[0].purpose is not AttemptPurpose.FULL

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
            return record.model_copy(update={"results": results})

        await self._store.update_record(name, record_results)
        self._emit(
            EventKind.STEP,
            name,
            f"collected {written.succeeded} result(s), {written.failed} failed, "
            f"to {written.location}",
        )

    async def _given_up_lines(
        self, resource: DesiredResource, shard: JobAttempt, shards: int, job: LiveJob | None
    ) -> list[dict[str, Any]]:
        """An error line for every request of a shard that will not run again."""
        keys: list[str]
        if shard.request_keys_file is not None:
            backend = self._store.backend
            blob = await asyncio.to_thread(
                backend.get_blob, "request-keys", shard.request_keys_file
            )
            keys = [str(k) for k in json.loads(blob or b"[]")]
        else:  # a state written before shards' keys were stored: split the source again
            staging = self._staging(resource.name) / f"given-up-{shard.number}"
            prepared = await self._shard_input(resource, shard, shards, staging)
            shutil.rmtree(staging, ignore_errors=True)
            keys = list(prepared.keys or ())
        state = job.state if job is not None else shard.state
        message = (
            f"not run: batch job {shard.job_name} (shard {shard.shard}) ended {state.value} "
            "and was not resubmitted"
        )
        code = _RPC_CODE.get(state, 2)
        self._emit(
            EventKind.WARNING,
            resource.name,
            f"{len(keys)} request(s) of shard {shard.shard} recorded as failed: "
            f"its job ended {state.value}",
        )
        return [{"key": key, "error": {"code": code, "message": message}} for key in keys]

    async def _download_and_write(
        self,
        resource: DesiredResource,
        record: ResourceRecord,
        group: Sequence[JobAttempt],
        jobs: Mapping[str | None, LiveJob | None],
        failed_lines: Mapping[int | None, list[dict[str, Any]]] | None = None,
    ) -> WrittenResults | None:
        staging = self._staging(resource.name) / f"collect-{group[0].number}"
        staging.mkdir(parents=True, exist_ok=True)
        target = self._output(resource)
        failed_lines = failed_lines or {}
        only = jobs[group[0].job_name] if len(group) == 1 and not failed_lines else None
        if (
            only is not None
            and only.output_file
            and group[0].purpose is AttemptPurpose.FULL
            and can_keep_in_place(target)
        ):
            written = await self._download_in_place(resource, only.output_file, target)
            shutil.rmtree(staging, ignore_errors=True)
            return written
        # Shards download concurrently (bounded like every other step); merged in shard order.
        gate = asyncio.Semaphore(max(1, self._options.parallelism))

        async def fetch(attempt: JobAttempt) -> Path | list[dict[str, Any]] | None:
            if attempt.shard in failed_lines:
                return failed_lines[attempt.shard]
            job = jobs[attempt.job_name]
            assert job is not None
            async with gate:
                if not job.output_file:
                    return await self._inline_lines(resource, attempt, job)
                part = staging / f"part-{attempt.shard or 0}-{attempt.rerun}.jsonl"
                measured = await self._download_when_ready(resource.name, job.output_file, part)
                return None if measured is None else part

        fetched = await asyncio.gather(*(fetch(attempt) for attempt in group))
        if any(item is None for item in fetched):
            return None
        crash_point("results-downloaded")
        partial = group[0].purpose is not AttemptPurpose.FULL

        def write() -> WrittenResults:
            def new_lines() -> Iterator[bytes | dict[str, Any]]:
                # In shard order: a downloaded part, inline responses, or a given-up shard's lines.
                for item in fetched:
                    if isinstance(item, Path):
                        yield from iter_jsonl_lines(item)
                    elif item is not None:
                        yield from item

            if partial and record.results is not None:
                current = resource.source.key_digests
                with self._previous_results(resource, record) as previous_path:
                    merged = merge_results(
                        iter_jsonl_lines(previous_path) if previous_path else iter(()),
                        new_lines(),
                        staging / "merge",
                        keep=current.__contains__ if current else None,
                    )
                    return write_results(merged, target, staging / "gcs")
            return write_results(new_lines(), target, staging / "gcs")

        written = await asyncio.to_thread(write)
        shutil.rmtree(staging, ignore_errors=True)
        return written

    async def _download_in_place(
        self, resource: DesiredResource, file_name: str, target: OutputTarget
    ) -> WrittenResults | None:
        """One job's whole results straight into a temp file beside the output, then renamed.

        The common case (one job, a local file output) so costs one download and one read:
        no staging copy, and the hash the download computed is the output's.
        """
        assert target.local_path is not None
        downloaded = await asyncio.to_thread(temp_beside, target.local_path)
        # A large file is hashed and summarised by a second process as it arrives.
        follower = ResultsFollower()
        try:
            measured = await self._download_when_ready(
                resource.name, file_name, downloaded, follower
            )
            if measured is None:
                return None
            crash_point("results-downloaded")
            return await asyncio.to_thread(
                keep_downloaded, downloaded, target, *measured, summary=follower.summary
            )
        finally:
            await asyncio.to_thread(follower.abandon)
            downloaded.unlink(missing_ok=True)

    async def _download_when_ready(
        self, resource: str, file_name: str, dest: Path, follower: ResultsFollower | None = None
    ) -> tuple[str, int] | None:
        """Download a results file, returning its (sha256, bytes); None if it is still not
        downloadable (as right after SUCCEEDED) when the retry window closes."""
        deadline = self._clock.monotonic() + self._options.results_retry_seconds
        delay = 0.5
        while True:
            try:
                return await self._adapter.download_file(file_name, dest, follower=follower)
            except PermanentServiceError as exc:
                if exc.status_code not in (403, 404):
                    raise
                if self._clock.monotonic() >= deadline:
                    self._emit(
                        EventKind.WARNING,
                        resource,
                        f"results file {file_name} is not downloadable yet; the next apply "
                        "collects it",
                    )
                    return None
            await self._clock.sleep(self._rng.uniform(delay / 2, delay))
            delay = min(10.0, delay * 2)

    async def _inline_lines(
        self, resource: DesiredResource, attempt: JobAttempt, job: LiveJob
    ) -> list[dict[str, Any]]:
        """Inline responses as result lines, keys restored (by metadata, else by position)."""
        results = await self._adapter.inline_results(job.name)
        if attempt.request_keys_file:
            backend = self._store.backend
            blob = await asyncio.to_thread(
                backend.get_blob, "request-keys", attempt.request_keys_file
            )
            sent = [str(k) for k in json.loads(blob or b"[]")]
        elif resource.manifest.spec.source.requests is not None:
            sent = [line["key"] for line in inline_source_lines(resource)]
        else:
            sent = await asyncio.to_thread(keys_in_order, resource, self._project.root)
        lines: list[dict[str, Any]] = []
        missing_keys = 0
        for result in results:
            key = result.key
            if key is None:
                missing_keys += 1
                key = sent[result.index] if result.index < len(sent) else f"index-{result.index}"
            line: dict[str, Any] = {"key": key}
            if result.error is not None:
                line["error"] = {"code": result.error.code, "message": result.error.message}
            else:
                line["response"] = result.response
            lines.append(line)
        if missing_keys and resource.manifest.spec.task is Task.GENERATE:
            self._emit(
                EventKind.WARNING,
                resource.name,
                f"{missing_keys} inline response(s) came back without their key; keys were "
                "assigned by position, which is wrong if the service reordered them "
                "(python-genai #1909)",
            )
        if len(results) != len(sent):
            self._emit(
                EventKind.WARNING,
                resource.name,
                f"{len(sent)} request(s) sent but {len(results)} response(s) returned",
            )
        return lines

    # -- in-place changes and removal ----------------------------------------------------------

    async def _update(self, action: Action) -> None:
        resource = self._resource(action.resource)
        record = self._store.state.resources[action.resource]
        target = self._output(resource)
        results = record.results
        new_results = results
        if results is not None and (
            results.location != target.results_location
            or (action.request_changes is not None and action.request_changes.removed)
        ):
            keep = set(resource.source.key_digests) if resource.source.key_digests else None

            def copy() -> WrittenResults | None:
                with self._previous_results(resource, record) as path:
                    if path is None:
                        return None
                    lines = read_results(path)
                    if keep is not None:
                        lines = (line for line in lines if str(line.get("key")) in keep)
                    return write_results(lines, target, self._staging(resource.name) / "gcs")

            written = await asyncio.to_thread(copy)
            if written is not None:
                new_results = results.model_copy(
                    update={
                        "location": written.location,
                        "sha256": written.sha256,
                        "bytes": written.bytes,
                        "succeeded": written.succeeded,
                        "failed": written.failed,
                    }
                )
                self._emit(EventKind.STEP, resource.name, f"results copied to {written.location}")
        digests_ref = await self._store_key_digests(resource)

        # Attempts keep the spec hash they ran under: the record's spec_hash moving to the
        # desired spec is what tells the planner these results now answer it (no re-run needed).
        def update(state: State) -> State:
            record = self._record_for(state, resource, digests_ref)
            return state.with_resource(record.model_copy(update={"results": new_results}))

        await self._store.update(update)
        self._emit(EventKind.STEP, resource.name, f"updated ({action.reason.text})")

    async def _sync_fields(self, name: str) -> None:
        """Bring the recorded in-place fields up to date (a no-op write bumps no serial)."""
        resource = self._desired.resources.get(name)
        if resource is None or name not in self._store.state.resources:
            return
        record = self._store.state.resources[name]
        if record.spec_hash != resource.spec_hash:
            return
        in_place = resource.in_place_fields()
        if record.in_place != in_place:
            await self._store.update_record(
                name, lambda r: r.model_copy(update={"in_place": in_place})
            )

    async def _cancel_jobs(self, resource: str, job_names: Sequence[str]) -> None:
        for job_name in job_names:
            await self._adapter.cancel_job(job_name)
            self._emit(EventKind.STEP, resource, f"cancelled {job_name}")

        def mark(record: ResourceRecord) -> ResourceRecord:
            attempts = tuple(
                a.model_copy(update={"state": JobState.CANCELLED, "ended_at": self._clock.now()})
                if a.job_name in job_names
                else a
                for a in record.attempts
            )
            return record.model_copy(update={"attempts": attempts})

        if resource in self._store.state.resources:
            await self._store.update_record(resource, mark)

    async def _forget(self, action: Action) -> None:
        record = self._store.state.resources.get(action.resource)
        if record is None:
            return
        if self._options.prune:
            files = {a.input_file for a in record.attempts if a.input_file}
            files |= {a.output_file for a in record.attempts if a.output_file}
            for file_name in sorted(f for f in files if f):
                try:
                    await self._adapter.delete_file(file_name)
                    self._emit(EventKind.STEP, action.resource, f"deleted {file_name}")
                except ServiceError as exc:
                    self._emit(
                        EventKind.WARNING, action.resource, f"could not delete {file_name}: {exc}"
                    )
        await self._store.forget(action.resource)
        where = f"; results stay at {record.results.location}" if record.results else ""
        self._emit(EventKind.STEP, action.resource, f"forgotten{where}")


def _with_job(
    record: ResourceRecord, key: tuple[int, int | None, int], job: LiveJob, now: Any
) -> ResourceRecord:
    """Fill the attempt `key` = (number, shard, rerun) with the created or adopted job."""
    attempts = tuple(
        a.model_copy(
            update={
                "job_name": job.name,
                "state": job.state,
                "created_at": job.create_time or now,
                "updated_at": job.update_time,
                "ended_at": job.end_time,
                "output_file": job.output_file,
            }
        )
        if (a.number, a.shard, a.rerun) == key
        else a
        for a in record.attempts
    )
    return record.model_copy(update={"attempts": attempts})


def _with_live_state(record: ResourceRecord, job: LiveJob) -> ResourceRecord:
    attempts = tuple(
        a.model_copy(
            update={
                "state": job.state,
                "updated_at": job.update_time or a.updated_at,
                "ended_at": job.end_time or a.ended_at,
                "output_file": job.output_file or a.output_file,
            }
        )
        if a.job_name == job.name
        else a
        for a in record.attempts
    )
    return record.model_copy(update={"attempts": attempts})


def _shard_max_bytes(resource: DesiredResource) -> int:
    """The manifest's `shards.max_bytes` in bytes (validation has already checked it parses)."""
    try:
        return parse_size(resource.manifest.spec.shards.max_bytes)
    except ValueError:
        return 0


_RPC_CODE = {JobState.FAILED: 13, JobState.EXPIRED: 4, JobState.CANCELLED: 1}
"""google.rpc.Code of a given-up shard's request lines: INTERNAL, DEADLINE_EXCEEDED, CANCELLED."""


def batch_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Service options a manifest's `config` carries besides display_name, in the REST spelling
    (`priority` stays `priority`; `some_field` becomes `someField`)."""
    return {camel(name): value for name, value in sorted(extra.items())}


def load_key_digests(backend: Any, state: State) -> dict[str, dict[str, str]]:
    """Per resource, the request-key index recorded for its applied source (blobs beside state)."""
    result: dict[str, dict[str, str]] = {}
    for name, record in state.resources.items():
        if record.key_digests_ref:
            blob = backend.get_blob(KEY_DIGESTS_BLOB, record.key_digests_ref)
            if blob:
                result[name] = {str(k): str(v) for k, v in json.loads(blob).items()}
    return result
