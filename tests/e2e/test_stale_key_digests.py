"""A resource whose source moves from a file to inline requests and back: the key digests of the
file's first version must not stand for the inline version the results now answer, or an
incremental re-run reuses, for a request whose text is the first version's again, the answer
to the inline version's different text."""

from __future__ import annotations

import json

import pytest

from reconciler.emulator import EmulatorHandle
from tests.e2e.conftest import Project, file_job_spec, jsonl, text_request


def _inline_spec(prompts: dict[str, str], output: str) -> str:
    lines = "".join(
        f"      - key: {key}\n        request:\n          contents:\n"
        f"            - parts:\n                - text: {text}\n"
        for key, text in prompts.items()
    )
    return f"  model: gemini-2.5-flash\n  source:\n    requests:\n{lines}  output: {output}\n"


def _answers(project: Project) -> dict[str, str]:
    lines = (project.root / "results/eval.jsonl").read_text().splitlines()
    return {
        line["key"]: json.dumps(line["response"]["candidates"][0]["content"], sort_keys=True)
        for line in map(json.loads, lines)
    }


def _apply(project: Project) -> None:
    project.commit()
    applied = project.run("apply", "--auto-approve", "--wait", "--timeout", "120s")
    assert applied.returncode == 0, applied.stderr


@pytest.mark.slow  # three applies
def test_results_answer_the_current_text_after_a_source_went_inline_and_back(
    project: Project, emulator: EmulatorHandle
) -> None:
    emulator.configure(undeletable_result_files=False)
    first = {"k1": "alpha question", "k2": "beta question"}
    project.write(
        "data/eval.jsonl", jsonl([{"key": k, "request": text_request(t)} for k, t in first.items()])
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    _apply(project)
    answers_first = _answers(project)

    # The same keys inline, with other texts: every answer changes.
    project.manifest("eval", _inline_spec({"k1": "gamma", "k2": "delta"}, "results/eval.jsonl"))
    _apply(project)
    assert _answers(project)["k1"] != answers_first["k1"]

    # Back to the file, k1 as in the first version, k2 new.
    third = {"k1": "alpha question", "k2": "epsilon question"}
    project.write(
        "data/eval.jsonl", jsonl([{"key": k, "request": text_request(t)} for k, t in third.items()])
    )
    project.manifest("eval", file_job_spec("data/eval.jsonl", "results/eval.jsonl"))
    _apply(project)

    assert _answers(project)["k1"] == answers_first["k1"], "k1 answers the inline text"
    assert project.run("plan", "--detailed-exitcode").returncode == 0
