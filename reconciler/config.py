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

from reconciler.errors import ConfigError, SourceLocation

PROJECT_FILE = "reconciler.yaml"
DEFAULT_STATE = "state/reconciler.state.json"
ENV_PREFIX = "RECONCILER_"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class EmulatorSettings(_Strict):
    data_dir: str = ".reconciler/emulator"
    """Where the embedded emulator keeps its jobs and files (relative to the project root)."""

    job_seconds: Annotated[float, Field(ge=0)] = 3.0
    """How long an emulated job stays PENDING + RUNNING before it succeeds."""


class ModelPrice(_Strict):
    input_per_million: Annotated[float, Field(ge=0)]
    """Standard (non-batch) USD price per million input tokens."""
    output_per_million: Annotated[float, Field(ge=0)] = 0.0
    """Standard (non-batch) USD price per million output tokens."""


class Guardrails(_Strict):
    max_estimated_cost_usd: Annotated[float, Field(ge=0)] | None = None
    """Refuse a plan whose estimated cost (batch price) exceeds this."""
    allowed_models: list[str] | None = None
    """Refuse manifests naming other models."""
    max_requests_per_job: Annotated[int, Field(ge=1)] | None = None
    """Refuse a job with more requests than this (after sharding)."""
    max_concurrent_jobs: Annotated[int, Field(ge=1)] = 100
    """The service's concurrent batch job ceiling per project."""
    max_enqueued_tokens: dict[str, int] = Field(default_factory=dict)
    """Per-model cap on estimated input tokens in jobs running at once."""


class PollSettings(_Strict):
    initial_seconds: Annotated[float, Field(gt=0)] = 1.0
    """First wait between polling rounds."""
    max_seconds: Annotated[float, Field(gt=0)] = 60.0
    """Longest wait between polling rounds (exponential backoff with jitter up to this)."""


class ProjectConfig(_Strict):
    """`reconciler.yaml`: what is not per job."""

    manifests: str = "manifests"
    """Directory (or file) of manifests, relative to the project root."""
    state: str = DEFAULT_STATE
    """A path (local JSON file backend) or a `postgresql://` URL (PostgreSQL backend)."""
    endpoint: str = "gemini"
    """`gemini` (the real API; key from GEMINI_API_KEY/GOOGLE_API_KEY), `emulator` (embedded,
    in-process), or an http(s) URL of a running emulator or proxy."""
    api_version: str = "v1beta"
    """Gemini API version path segment."""
    output_root: str = "."
    """Local outputs must stay under this directory (relative to the project root)."""
    parallelism: Annotated[int, Field(ge=1, le=256)] = 8
    """How many service calls apply makes at once."""
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    poll: PollSettings = Field(default_factory=PollSettings)
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


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        location = SourceLocation(str(path), mark.line + 1, mark.column + 1) if mark else None
        raise ConfigError(f"invalid YAML: {exc.problem}", location=location) from None
    except (YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read project file: {exc}", location=SourceLocation(str(path))) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top of the project file", location=SourceLocation(str(path), 1, 1))
    return data


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
        config_path: Path | None = root / PROJECT_FILE
        if not config_path.is_file():
            config_path = None
    else:
        root, config_path = find_project_root(Path.cwd())
    data: dict[str, Any] = _read_yaml_mapping(config_path) if config_path else {}
    data.update(env_overrides(environ))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = SourceLocation(str(config_path)) if config_path else None
        raise ConfigError(f"setting `{field}`: {err['msg']}", location=where) from None
    return Project(root=root, config=config, config_path=config_path)
