"""The bundled model catalogue's verdicts (validate) and the service's (plan)."""

from __future__ import annotations

from reconciler.errors import Severity
from reconciler.manifests.model import Task
from reconciler.manifests.models_catalogue import (
    EMBED_METHOD,
    GENERATE_METHOD,
    catalogue_problem,
    service_model_problem,
)


def test_known_models_for_their_task_pass() -> None:
    assert catalogue_problem("gemini-2.5-flash", Task.GENERATE) is None
    assert catalogue_problem("models/gemini-embedding-001", Task.EMBED) is None
    assert catalogue_problem("tunedModels/mine-123", Task.GENERATE) is None


def test_a_near_miss_is_an_error_with_a_suggestion() -> None:
    problem = catalogue_problem("gemini-2.5-flsh", Task.GENERATE)
    assert problem is not None and problem.severity is Severity.ERROR
    assert problem.hint == "did you mean `gemini-2.5-flash`?"


def test_a_far_unknown_model_is_a_warning_left_to_plan() -> None:
    problem = catalogue_problem("totally-new-thing", Task.GENERATE)
    assert problem is not None and problem.severity is Severity.WARNING


def test_a_known_model_for_the_other_task_is_a_warning_at_validate() -> None:
    problem = catalogue_problem("gemini-embedding-001", Task.GENERATE)
    assert problem is not None and problem.severity is Severity.WARNING
    assert "does not support batchGenerateContent" in problem.message


def test_service_verdicts() -> None:
    assert service_model_problem("m", Task.GENERATE, [GENERATE_METHOD]) is None
    missing = service_model_problem("gemini-2.5-flsh", Task.GENERATE, None)
    assert missing is not None and missing.hint == "did you mean `gemini-2.5-flash`?"
    wrong = service_model_problem("e", Task.GENERATE, ["embedContent", EMBED_METHOD])
    assert wrong is not None and "embedding model" in wrong.message
    neither = service_model_problem("x", Task.EMBED, ["generateContent"])
    assert neither is not None and "neither batch method" in neither.message
