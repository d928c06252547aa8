"""Small factories of plain planner inputs (desired, state, live) for tests; no SDK, no files."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.errors import SourceLocation
from reconciler.live.snapshot import Live, LiveJob
from reconciler.live.tags import IdentityTag, project_token
from reconciler.manifests.desired import Desired, DesiredResource, SourceDigest
from reconciler.manifests.model import BatchJobManifest
from reconciler.plan import Action, Plan, make_plan
from reconciler.state.document import (
    AttemptPurpose,
    InputRecord,
    JobAttempt,
    JobState,
    ResourceRecord,
    ResultsRecord,
    State,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LINEAGE = "3f0c5d0e-0000-4000-8000-000000000001"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key_digests(n: int, version: str = "v1") -> dict[str, str]:
    return {f"key-{i:03d}": sha(f"{version}:{i}")[:16] for i in range(n)}


def resource(
    name: str = "eval-summaries",
    *,
    model: str = "gemini-2.5-flash",
    task: str = "generate",
    content: str = "v1",
    requests: int = 10,
    size: int = 4_000,
    keys: dict[str, str] | None = None,
    output: str | None = None,
    labels: dict[str, str] | None = None,
    policy: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    shards: dict[str, Any] | None = None,
    priority: int | None = None,
) -> DesiredResource:
    """A desired resource whose spec hash follows its replacing fields, as the loader's does."""
    spec: dict[str, Any] = {
        "model": model,
        "task": task,
        "source": {"file": f"data/{name}.jsonl"},
        "output": output or f"results/{name}.jsonl",
    }
    if policy is not None:
        spec["policy"] = policy
    if config is not None:
        spec["config"] = config
    if shards is not None:
        spec["shards"] = shards
    if priority is not None:
        spec["priority"] = priority
    manifest = BatchJobManifest.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "BatchJob",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
    )
    digests = keys if keys is not None else key_digests(requests, content)
    source = SourceDigest(
        sha256=sha(f"{name}:{content}"),
        bytes=size,
        request_count=len(digests) if keys is not None else requests,
        keys_sha256=sha(json.dumps(sorted(digests.items()))),
        key_digests=digests,
    )
    draft = DesiredResource(
        name=name,
        manifest=manifest,
        location=SourceLocation(f"manifests/{name}.yaml", 3, 9),
        source=source,
        media=(),
        spec_hash="0" * 64,
    )
    spec_hash = sha(json.dumps(draft.replacing_fields(), sort_keys=True))
    return DesiredResource(
        name=name,
        manifest=manifest,
        location=draft.location,
        source=source,
        media=(),
        spec_hash=spec_hash,
    )


def desired(*resources: DesiredResource) -> Desired:
    return Desired(
        resources={r.name: r for r in resources},
        manifests_sha256=sha("|".join(sorted(r.spec_hash for r in resources))),
    )


def tag(
    name: str,
    spec_hash: str,
    number: int,
    shard: int | None = None,
    rerun: int = 0,
    *,
    project: str | None = LINEAGE,
) -> str:
    """The identity tag apply gives a job of the project whose identity is `project` (the
    factories' state lineage by default; None: a tag from before tags named the project)."""
    token = project_token(project) if project is not None else None
    return str(IdentityTag(name, spec_hash[:12], number, shard, rerun, project=token))


def attempt(
    res: DesiredResource,
    number: int = 1,
    *,
    state: JobState = JobState.RUNNING,
    job_name: str | None = "auto",
    purpose: AttemptPurpose = AttemptPurpose.FULL,
    shard: int | None = None,
    rerun: int = 0,
    request_count: int | None = None,
    spec_hash: str | None = None,
) -> JobAttempt:
    """An attempt; `job_name="auto"` derives `batches/<name>-<n>`, None records only the intent."""
    spec_hash = spec_hash or res.spec_hash
    if job_name == "auto":
        job_name = f"batches/{res.name}-{number}" + (f"-s{shard}" if shard is not None else "")
        job_name += f"r{rerun}" if rerun else ""
    return JobAttempt(
        number=number,
        tag=tag(res.name, spec_hash, number, shard, rerun),
        spec_hash=spec_hash,
        purpose=purpose,
        shard=shard,
        rerun=rerun,
        request_count=request_count,
        job_name=job_name,
        state=JobState.UNKNOWN if job_name is None else state,
        intent_at=T0,
        created_at=None if job_name is None else T0,
    )


def results(
    res: DesiredResource,
    *,
    succeeded: int | None = None,
    failed: int = 0,
    attempts: tuple[int, ...] = (1,),
) -> ResultsRecord:
    return ResultsRecord(
        location=res.manifest.spec.output,
        sha256=sha(f"results:{res.name}"),
        bytes=1234,
        succeeded=res.source.request_count - failed if succeeded is None else succeeded,
        failed=failed,
        collected_at=T0 + timedelta(hours=1),
        from_attempts=attempts,
    )


def record(
    res: DesiredResource,
    *attempts: JobAttempt,
    results: ResultsRecord | None = None,
    fields: bool = True,
) -> ResourceRecord:
    """The record apply would have written for `res` (its fields copied unless fields=False)."""
    return ResourceRecord(
        name=res.name,
        spec_hash=res.spec_hash,
        replacing=res.replacing_fields() if fields else {},
        in_place=res.in_place_fields() if fields else {},
        input=InputRecord(
            sha256=res.source.sha256,
            bytes=res.source.bytes,
            request_count=res.source.request_count,
            file_name=f"files/{res.name}-input",
        ),
        attempts=attempts,
        results=results,
    )


def state(*records: ResourceRecord, serial: int = 7) -> State:
    return State(lineage=LINEAGE, serial=serial, resources={r.name: r for r in records})


def job(
    res_or_attempt: DesiredResource | JobAttempt,
    *,
    state: JobState = JobState.RUNNING,
    name: str | None = None,
    number: int = 1,
    shard: int | None = None,
) -> LiveJob:
    """A live job tagged for an attempt (named as the attempt's job) or for a resource's spec."""
    if isinstance(res_or_attempt, JobAttempt):
        att = res_or_attempt
        display = f"eval {att.tag}"
        job_name = name or att.job_name or f"batches/adopted-{att.number}"
    else:
        display = f"eval {tag(res_or_attempt.name, res_or_attempt.spec_hash, number, shard)}"
        job_name = name or f"batches/{res_or_attempt.name}-{number}"
    return LiveJob(
        name=job_name,
        display_name=display,
        state=state,
        model="models/gemini-2.5-flash",
        create_time=T0,
    )


def live(*jobs: LiveJob) -> Live:
    return Live(observed_at=T0 + timedelta(hours=2), jobs={j.name: j for j in jobs})


def plan(d: Desired, s: State, lv: Live | None = None, **kwargs: object) -> Plan:
    """`make_plan` at T0, against no live jobs unless given."""
    return make_plan(d, s, lv or live(), created_at=T0, **kwargs)  # type: ignore[arg-type]


def only(p: Plan) -> Action:
    """The plan's one action (the test planned one resource)."""
    assert len(p.actions) == 1, p.actions
    return p.actions[0]
