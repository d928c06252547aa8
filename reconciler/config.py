"""The project file `reconciler.yaml`, with flag and RECONCILER_* overrides -> ProjectConfig.

The project root is the directory holding `reconciler.yaml` (searched upwards from the working
directory, or given with -C), else the working directory. Paths in the config are relative to it.
The API key is never part of the config: it comes only from the environment, as the SDK reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler.diagnostics import validation_diagnostics
from reconciler.errors import ConfigError, SourceLocation
from reconciler.yamlsafe import YamlDocument, read_yaml_documents

PROJECT_FILE = "reconciler.yaml"
DEFAULT_STATE = "state/reconciler.state.json"
ENV_PREFIX = "RECONCILER_"


VERTEX_LOCATION_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
"""A Vertex region (`us-central1`, `global`). The SDK sends the credentials to the host
`https://<location>-aiplatform.googleapis.com/`, so a location with `.`, `/`, `?`, `#` or `@`
would name another host: only a DNS label is taken."""
VERTEX_PROJECT_PATTERN = r"^[a-z0-9][a-z0-9.:-]{0,99}$"
"""A Google Cloud project id or number (domain-scoped ids have `.` and `:`): a path segment of
every Vertex URL, so never `/`, `?` or `#`."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EmulatorSettings(_Strict):
    data_dir: str = ".reconciler/emulator"
    """Where the embedded emulator keeps its jobs and files (relative to the project root)."""

    job_seconds: Annotated[float, Field(ge=0)] = 3.0
    """How long an emulated job stays PENDING + RUNNING before it succeeds."""


class VertexSettings(_Strict):
    """Where Vertex AI batch prediction runs (`endpoint: vertex`). Credentials are never part of
    the config: Application Default Credentials (`gcloud auth application-default login`, or a
    service-account key file named by GOOGLE_APPLICATION_CREDENTIALS), read by the SDK."""

    project: Annotated[str, Field(pattern=VERTEX_PROJECT_PATTERN)] | None = None
    """The Google Cloud project; default GOOGLE_CLOUD_PROJECT."""
    location: Annotated[str, Field(pattern=VERTEX_LOCATION_PATTERN)] | None = None
    """The Vertex AI region, e.g. `us-central1`; default GOOGLE_CLOUD_LOCATION."""
    staging: Annotated[str, Field(pattern=r"^gs://[a-z0-9][a-z0-9._-]{1,220}(/.*)?$")] | None = None
    """`gs://bucket/prefix` where local inputs are staged (content-addressed, never uploaded
    twice) and where jobs write their predictions. Required with `endpoint: vertex`."""
    base_url: str | None = None
    """Testing only: `emulator` (the embedded emulator with an embedded Cloud Storage
    emulator) or the http(s) URL of a running Vertex emulator. Such an endpoint never receives
    your credentials: requests carry a fixed placeholder token."""
    storage_url: str | None = None
    """Testing only, with `base_url`: the Cloud Storage emulator's URL; default
    STORAGE_EMULATOR_HOST."""
    bigquery_url: str | None = None
    """Testing only, with `base_url`: the BigQuery emulator's URL (bqemulator), for
    `source.bigquery` tables and bq:// outputs; default BIGQUERY_EMULATOR_HOST."""


class ModelPrice(_Strict):
    input_per_million: Annotated[float, Field(ge=0)]
    """Standard (non-batch) USD price per million input tokens."""
    output_per_million: Annotated[float, Field(ge=0)] = 0.0
    """Standard (non-batch) USD price per million output tokens (thinking tokens included)."""
    cached_input_per_million: Annotated[float, Field(ge=0)] | None = None
    """Standard (non-batch) USD price per million input tokens served from a context cache;
    unset: the input price."""


class Guardrails(_Strict):
    max_estimated_cost_usd: Annotated[float, Field(ge=0)] | None = None
    """Refuse a plan whose estimated cost (batch price) exceeds this."""
    allowed_models: list[str] | None = None
    """Refuse manifests naming other models."""
    max_requests_per_job: Annotated[int, Field(ge=1)] | None = None
    """Refuse a job with more requests than this (after sharding)."""
    max_concurrent_jobs: Annotated[int, Field(ge=1)] = 100
    """The service's concurrent batch job ceiling per project (pending + running jobs, ours or
    not). Apply starts new jobs past it in waves as jobs end (`--wait`), or leaves them for the
    next run (`--no-wait`); `plan` shows how the work fits."""
    max_enqueued_tokens: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Deprecated spelling of `limits.enqueued_tokens` (which wins where both name a model)."""


class Limits(_Strict):
    """The service's quotas for this project. Defaults come from the published table of the
    Developer API usage tier (shipped as reconciler/plan/limits.json, with its source and date);
    each setting here overrides its entry."""

    # Strict: `tier: true` or `storage_bytes: "10"` is a mistake to report, not a 1 or a 10.
    model_config = ConfigDict(strict=True)

    tier: Annotated[int, Field(ge=1, le=3)] = 1
    """The project's Developer API usage tier (1, 2 or 3): picks the default enqueued-token
    limit of each model (e.g. gemini-2.5-flash: 3 M tokens at tier 1, 400 M at tier 2, 1 B at
    tier 3)."""
    enqueued_tokens: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Per model id: the most estimated input tokens (bytes / 4) this project's batch jobs of
    that model may hold pending or running at once. Apply starts jobs past it as earlier ones
    end; `plan` refuses a single job larger than it (shard the input)."""
    storage_bytes: Annotated[int, Field(ge=1)] | None = None
    """Bytes of Files API storage of the project (default 20 GB): uploads that would not fit
    wait for deletions (`apply --wait`) or are refused."""
    file_bytes: Annotated[int, Field(ge=1)] | None = None
    """The largest file in bytes the Files API takes (default 2 GB)."""


class Cleanup(_Strict):
    """What apply deletes from the service once a job's results are collected."""

    # Strict: only true or false decides a deletion; `inputs: "no"` or `results: 1` is refused.
    model_config = ConfigDict(strict=True)

    inputs: bool = True
    """Delete the input files reconciler uploaded, once every job that reads them has ended
    and its results are collected. An input needed again (a retry, a re-run) is uploaded again."""
    results: bool = True
    """Delete the results files of collected jobs where the service allows it (it refuses ids
    over 40 characters, python-genai #1759: those are listed in the apply summary)."""


class PollSettings(_Strict):
    initial_seconds: Annotated[float, Field(gt=0)] = 1.0
    """First wait between polling rounds."""
    max_seconds: Annotated[float, Field(gt=0)] = 60.0
    """Longest wait between polling rounds (exponential backoff with jitter up to this)."""


class ProjectConfig(_Strict):
    """`reconciler.yaml`: what is not per job."""

    project: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] | None = None
    """A stable id of this project (lowercase letters, digits, `-`). It names the project in
    every job's identity tag, so two projects on one service never adopt, cancel or forget each
    other's jobs, and it is the workspace of a PostgreSQL state. Without it, a local state's
    lineage names the project; a PostgreSQL state then needs `?workspace=` in its URL."""
    manifests: str = "manifests"
    """Directory (or file) of manifests, relative to the project root."""
    state: str = DEFAULT_STATE
    """A path (local JSON file backend) or a `postgresql://` URL (PostgreSQL backend)."""
    endpoint: str = "gemini"
    """`gemini` (the real API; key from GEMINI_API_KEY/GOOGLE_API_KEY), `vertex` (Vertex AI
    batch prediction; see `vertex`), `emulator` (embedded, in-process), or an http(s) URL of a
    running emulator or proxy."""
    api_version: str = "v1beta"
    """Gemini API version path segment."""
    output_root: str = "."
    """Local outputs must stay under this directory (relative to the project root)."""
    parallelism: Annotated[int, Field(ge=1, le=256)] = 32
    """How many service calls apply makes at once (uploads, creates, downloads). Small jobs are
    bound by per-call latency, so many at once pay: 100 small jobs took 14.8 s at 8 and 9.0 s at
    32 (benchmarks/RESULTS.md). Transfers stream in 1 MiB pieces, so memory stays small."""
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)
    """Settings of the embedded emulator (`endpoint: emulator`)."""
    vertex: VertexSettings = Field(default_factory=VertexSettings)
    """Project, region and Cloud Storage staging of `endpoint: vertex`."""
    guardrails: Guardrails = Field(default_factory=Guardrails)
    """Limits that make `plan` refuse instead of spending money by mistake."""
    poll: PollSettings = Field(default_factory=PollSettings)
    """How `apply --wait` polls running jobs."""
    limits: Limits = Field(default_factory=Limits)
    """The service's quotas (enqueued tokens per model, Files storage) by usage tier, with
    overrides; the concurrent-job limit is `guardrails.max_concurrent_jobs`."""
    cleanup: Cleanup = Field(default_factory=Cleanup)
    """Which service files apply deletes once results are collected."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Overrides of the shipped price table, by model id."""


@dataclass(frozen=True, slots=True)
class Project:
    """A resolved project: its root and its configuration after overrides."""

    root: Path
    config: ProjectConfig
    config_path: Path | None

    def path(self, relative: str) -> Path:
        return (self.root / relative).resolve()


def find_project_root(start: Path) -> tuple[Path, Path | None]:
    """The nearest directory at or above `start` holding reconciler.yaml, else `start` itself."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return directory, candidate
    return start, None


def env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """Top-level settings given as RECONCILER_<NAME> variables (e.g. RECONCILER_STATE)."""
    settable = {"manifests", "state", "endpoint", "api_version", "output_root", "parallelism"}
    result: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in settable and value != "":
                result[name] = value
    return result


def load_project(
    project_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Project:
    """Find the project, read reconciler.yaml, apply env then flag overrides, validate.

    Raises:
        ConfigError: the file is not valid YAML or a setting is invalid (names file and field).
    """
    environ = os.environ if environ is None else environ
    if project_dir is not None:
        root = project_dir.resolve()
        if not root.is_dir():
            raise ConfigError(f"project directory {project_dir} does not exist")
        candidate = root / PROJECT_FILE
        config_path: Path | None = candidate if candidate.is_file() else None
    else:
        root, config_path = find_project_root(Path.cwd())
    data: dict[str, Any] = {}
    document: YamlDocument | None = None
    if config_path is not None:
        document = _read_project_file(config_path, root)
        data = dict(document.data)
    from_env = env_overrides(environ)
    from_flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    data.update(from_env)
    data.update(from_flags)
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, document, set(from_env), set(from_flags)) from None
    return Project(root=root, config=config, config_path=config_path)


def _read_project_file(path: Path, root: Path) -> YamlDocument:
    documents, diagnostics = read_yaml_documents(path, _shown(path, root))
    if diagnostics:
        first = diagnostics[0]
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        raise ConfigError(first.message + more, location=first.location, hint=first.hint)
    if len(documents) > 1:
        raise ConfigError(
            "the project file must hold one YAML document",
            location=SourceLocation(documents[1].path, *documents[1].start),
        )
    if not documents:
        return YamlDocument(_shown(path, root), {}, {}, {})
    document = documents[0]
    if not isinstance(document.data, dict):
        raise ConfigError(
            "expected a mapping at the top of the project file", location=document.at(())
        )
    return document


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _config_error(
    exc: ValidationError, document: YamlDocument | None, from_env: set[str], from_flags: set[str]
) -> ConfigError:
    """The first problem, located in reconciler.yaml, or attributed to the flag/variable that set it."""
    first_loc = tuple(exc.errors()[0]["loc"])
    top = str(first_loc[0]) if first_loc else ""
    if top in from_flags or top in from_env or document is None:
        item = exc.errors()[0]
        source = (
            f"--{top.replace('_', '-')}"
            if top in from_flags
            else f"{ENV_PREFIX}{top.upper()}"
            if top in from_env
            else "setting"
        )
        return ConfigError(f"{source}: `{'.'.join(map(str, item['loc']))}`: {item['msg']}")
    diagnostics = validation_diagnostics(exc, document, ProjectConfig)
    first = diagnostics[0]
    more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
    return ConfigError(first.message + more, location=first.location, hint=first.hint)
