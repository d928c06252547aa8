"""The bundled catalogue of batch-capable models, and the model checks made with it.

`validate` has no service to ask, so it checks `spec.model` against this list (as of `AS_OF`):
a model close to a known one is an error with a did-you-mean (`gemini-2.5-flsh`); a known model
whose batch method does not fit the job's task (an embedding model in a `generate` job) and a
model far from every known one are warnings, since this list dates: `plan` asks the service
itself (`models.get`, `service_model_problem`) and fails on either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.diagnostics import did_you_mean
from reconciler.errors import Severity
from reconciler.manifests.model import Task

AS_OF = "2025-12-17"
GENERATE_METHOD = "batchGenerateContent"
EMBED_METHOD = "asyncBatchEmbedContent"

GENERATE_MODELS = frozenset(
    {
        "gemini-3-pro-preview",
        "gemini-3-flash-preview",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.5-flash-image",
        "gemini-2.0-flash",
        "gemini-2.0-flash-lite",
    }
)
EMBED_MODELS = frozenset({"gemini-embedding-001", "text-embedding-004"})
KNOWN_MODELS = GENERATE_MODELS | EMBED_MODELS


def method_for(task: Task) -> str:
    """The batch method a task calls (and a model must list in supportedGenerationMethods)."""
    return EMBED_METHOD if task is Task.EMBED else GENERATE_METHOD


@dataclass(frozen=True, slots=True)
class ModelProblem:
    """What is wrong with a model name, for a diagnostic or an error."""

    severity: Severity
    message: str
    hint: str | None = None


def _task_mismatch(model: str, task: Task, embeds: bool, severity: Severity) -> ModelProblem:
    right = "embed" if embeds else "generate (the default)"
    return ModelProblem(
        severity,
        f"model `{model}` does not support {method_for(task)} (task: {task.value}); it is"
        f" {'an embedding' if embeds else 'a generation'} model",
        hint=f"did you mean task: {right}?",
    )


def catalogue_problem(model: str, task: Task) -> ModelProblem | None:
    """The bundled catalogue's verdict on `model` for `task`; None when it is fine.

    Tuned models (`tunedModels/...`) are the user's own and are not checked here.
    """
    if model.startswith("tunedModels/"):
        return None
    name = model.removeprefix("models/")
    if name in KNOWN_MODELS:
        embeds = name in EMBED_MODELS
        if embeds != (task is Task.EMBED):
            # A warning here (the catalogue may be dated); plan's models.get makes it an error.
            return _task_mismatch(name, task, embeds, Severity.WARNING)
        return None
    hint = did_you_mean(name, KNOWN_MODELS)
    if hint is not None:
        return ModelProblem(Severity.ERROR, f"unknown model `{name}`", hint=hint)
    return ModelProblem(
        Severity.WARNING,
        f"model `{name}` is not in reconciler's catalogue of batch models (as of {AS_OF})",
        hint="`plan` checks it with the service's models.get",
    )


def service_model_problem(
    model: str, task: Task, supported_methods: Iterable[str] | None
) -> ModelProblem | None:
    """The service's verdict: `supported_methods` None means models.get answered 404."""
    name = model.removeprefix("models/")
    if supported_methods is None:
        hint = did_you_mean(name, KNOWN_MODELS)
        return ModelProblem(
            Severity.ERROR,
            f"model `{name}` is not known to the service (models.get: 404 NOT_FOUND)",
            hint=hint or "list the service's models with `models.list`",
        )
    methods = frozenset(supported_methods)
    if method_for(task) not in methods:
        embeds = EMBED_METHOD in methods
        if embeds or GENERATE_METHOD in methods:
            return _task_mismatch(name, task, embeds, Severity.ERROR)
        return ModelProblem(
            Severity.ERROR,
            f"model `{name}` supports neither batch method ({', '.join(sorted(methods))})",
        )
    return None
