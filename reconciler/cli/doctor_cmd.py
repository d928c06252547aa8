"""`reconciler doctor`: is this setup ready for a real run? One line per check, before any job.

It reads and lists, never creates: the key's presence (never its value), the endpoint (one
listing of jobs and files), the manifests' models, the quota in use, gs:// access, BigQuery
tables on Vertex (each source readable, each output's dataset there) and the installed extras.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import click

from reconciler.cli.context import CliContext
from reconciler.cli.extras import installed, needs
from reconciler.cli.session import run_with_adapter, system_clock
from reconciler.config import Project, ProjectConfig
from reconciler.errors import ExitCode, ReconcilerError
from reconciler.live.endpoint import API_KEY_VARIABLES, EndpointKind, endpoint_kind, shown_url
from reconciler.live.gcs import check_access
from reconciler.live.gemini import AdapterSettings, BatchService, bigquery_checks
from reconciler.live.snapshot import Live
from reconciler.live.vertex_bigquery import TableCheck
from reconciler.manifests.bigquery_uri import is_bigquery
from reconciler.manifests.desired import DesiredResource
from reconciler.plan.cost import project_price_table

FILES_STORAGE_LIMIT = 20 * 1024**3
"""The Files API's storage per project (20 GB): uploads past it are refused."""

_PROBE_SETTINGS = AdapterSettings(retry_attempts=2, retry_initial_delay=0.5, request_timeout=20.0)
"""A doctor waits seconds for an answer, not apply's minutes of retries."""


class Outcome(enum.StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"
    """Not checked, because an earlier check failed or the setup does not need it."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome.value:<4}  {self.name}: {self.detail}"


def model_problem(model: str, task: str, config: ProjectConfig) -> str | None:
    """Why `model` cannot run a batch `task`, or None when it can.

    The one place doctor asks which models exist and support batch: the shipped price table
    (every model in it runs in batch) and the project's `prices:` (a model priced there is one
    the project says it uses).
    """
    name = model.removeprefix("models/")
    if project_price_table(config.endpoint, config.prices).price_for(name) is None:
        return f"{name} is not a known batch model (add it to `prices:` if it is new)"
    if (task == "embed") != ("embedding" in name):
        return f"{name} does not serve task `{task}`"
    return None


def _key_check(config: ProjectConfig, environ: Mapping[str, str]) -> Check:
    if endpoint_kind(config.endpoint) is not EndpointKind.GEMINI:
        return Check("api key", Outcome.OK, f"not needed for endpoint {shown_url(config.endpoint)}")
    for name in API_KEY_VARIABLES:
        if environ.get(name, "").strip():
            return Check("api key", Outcome.OK, f"{name} is set")
    names = " or ".join(API_KEY_VARIABLES)
    return Check("api key", Outcome.FAIL, f"set {names} (the key is never printed)")


def _probe(project: Project) -> tuple[Check, Live | None]:
    """List the jobs and files once: the endpoint answers, and the quota in use is known."""

    async def listing(adapter: BatchService) -> Live:
        return await adapter.snapshot(include_files=True)

    try:
        live = run_with_adapter(project, system_clock(), listing, settings=_PROBE_SETTINGS)
    except ReconcilerError as exc:
        return Check("endpoint", Outcome.FAIL, f"{shown_url(project.config.endpoint)}: {exc}"), None
    return Check("endpoint", Outcome.OK, f"{shown_url(project.config.endpoint)} answers"), live


def quota_checks(
    config: ProjectConfig, live: Live, *, storage_limit: int = FILES_STORAGE_LIMIT
) -> list[Check]:
    """Jobs running against the concurrent-job ceiling, and Files storage against its limit."""
    running = sum(1 for job in live.jobs.values() if not job.state.is_terminal)
    ceiling = config.guardrails.max_concurrent_jobs
    jobs = Check(
        "jobs running",
        Outcome.OK if running < ceiling else Outcome.FAIL,
        f"{running} of at most {ceiling} (guardrails.max_concurrent_jobs)",
    )
    used = sum(file.size_bytes for file in live.files.values())
    if live.endpoint == "vertex":
        # Vertex has no Files API, so no Files storage quota (inputs are staged objects).
        return [jobs]
    storage = Check(
        "files storage",
        Outcome.OK if used < storage_limit else Outcome.FAIL,
        f"{_size(used)} in {len(live.files)} file(s) of {_size(storage_limit)}",
    )
    return [jobs, storage]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _model_checks(config: ProjectConfig, resources: Iterable[DesiredResource]) -> list[Check]:
    users: dict[tuple[str, str], list[str]] = {}
    for resource in resources:
        spec = resource.manifest.spec
        users.setdefault((spec.model, spec.task.value), []).append(resource.name)
    checks = []
    for (model, task), names in sorted(users.items()):
        problem = model_problem(model, task, config)
        detail = problem or f"{model} supports batch {task} ({', '.join(sorted(names))})"
        checks.append(Check("model", Outcome.FAIL if problem else Outcome.OK, detail))
    return checks


def _extras_and_gcs_checks(config: ProjectConfig, resources: list[DesiredResource]) -> list[Check]:
    checks = []
    for need in needs(config, resources):
        if not installed(need.module):
            detail = f"{need.needed_for} needs {need.package}: {need.install}"
            checks.append(Check(f"extra {need.extra}", Outcome.FAIL, detail))
            continue
        checks.append(Check(f"extra {need.extra}", Outcome.OK, f"{need.package} is installed"))
        if need.location is not None:
            checks.append(_gcs_check(need.location))
    return checks


def _gcs_check(location: str) -> Check:
    try:
        check_access(location)
    except ReconcilerError as exc:
        return Check("gcs access", Outcome.FAIL, exc.message)
    return Check("gcs access", Outcome.OK, f"{location} is reachable")


def _manifest_checks(project: Project) -> tuple[list[Check], list[DesiredResource]]:
    from reconciler.manifests.loader import load

    result = load(project, None, key_digests=False)
    if result.desired is None:
        detail = f"{len(result.errors)} error(s); `reconciler validate` lists them"
        return [Check("manifests", Outcome.FAIL, detail)], []
    resources = sorted(result.desired.resources.values(), key=lambda r: r.name)
    return [Check("manifests", Outcome.OK, f"{len(resources)} valid")], resources


def run_checks(project: Project, environ: Mapping[str, str]) -> list[Check]:
    """Every check, in the order a user fixes them."""
    checks, resources = _manifest_checks(project)
    checks += _extras_and_gcs_checks(project.config, resources)
    checks += _model_checks(project.config, resources)
    key = _key_check(project.config, environ)
    checks.append(key)
    if key.outcome is Outcome.FAIL:
        checks.append(Check("endpoint", Outcome.SKIP, "no API key"))
        return checks
    endpoint, live = _probe(project)
    checks.append(endpoint)
    if live is not None:
        checks += quota_checks(project.config, live)
        checks += _bigquery_checks(project, resources)
    return checks


def _bigquery_checks(project: Project, resources: list[DesiredResource]) -> list[Check]:
    """One line per BigQuery source table and output table (Vertex), checked with the
    credentials and endpoint a run uses: readable, dataset there, or what to do."""
    sources = sorted({s for r in resources if (s := r.manifest.spec.source.bigquery)})
    outputs = sorted({o for r in resources if is_bigquery(o := r.manifest.spec.output)})
    if not sources and not outputs:
        return []

    async def look(adapter: BatchService) -> list[TableCheck]:
        return await bigquery_checks(adapter, sources, outputs)

    try:
        found = run_with_adapter(project, system_clock(), look, settings=_PROBE_SETTINGS)
    except ReconcilerError as exc:
        return [Check("bigquery", Outcome.FAIL, exc.message)]
    return [
        Check(
            f"bigquery {check.role}",
            Outcome.OK if check.ok else Outcome.FAIL,
            f"{check.uri}: {check.detail}"
            if check.ok
            else f"{check.uri}: {check.access.value}: {check.detail}",
        )
        for check in found
    ]


@click.command("doctor")
@click.pass_obj
def doctor(ctx: CliContext) -> int:
    """Check that this project is ready to run: the API key is set (never printed), the
    endpoint answers, each manifest's model supports batch, the quota in use (jobs running,
    Files storage), gs:// outputs are reachable, BigQuery source tables are readable and output
    datasets exist (Vertex), and the extras the outputs and the state need are installed. One line per check; exit status 1 if any failed. Creates nothing.
    """
    checks = run_checks(ctx.project(), os.environ)
    for check in checks:
        click.echo(str(check))
    failed = sum(1 for check in checks if check.outcome is Outcome.FAIL)
    if failed:
        click.echo(f"Error: {failed} check(s) failed", err=True)
        return ExitCode.ERROR
    return ExitCode.OK
