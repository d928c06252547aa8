"""`reconciler validate` and `reconciler schema` as a user runs them: exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"


def _run(*args: str, cwd: Path = FIXTURE_PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )


def test_validate_of_the_demo_manifests_exits_zero() -> None:
    result = _run("validate", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "5 manifest(s) valid in 5 file(s)\n"


@pytest.mark.parametrize(
    "case", ["python-tag", "alias-bomb", "syntax-error", "jsonl-bad-json", "output-dotdot"]
)
def test_validate_of_a_broken_manifest_exits_one_without_traceback(case: str) -> None:
    result = _run("validate", f"broken/{case}.yaml")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    first = result.stderr.splitlines()[0]
    assert first.startswith(("broken/", "data/")) and ": error: " in first


def test_validate_reports_every_file_in_one_run() -> None:
    result = _run("validate", "broken")
    assert result.returncode == 1
    located = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(located) >= 35
    assert result.stderr.splitlines()[-1].startswith("Error: ")


def test_validate_json_lists_errors_as_objects() -> None:
    result = _run(
        "validate",
        "--format",
        "json",
        "broken/jsonl-misplaced-temperature.yaml",
        "broken/unknown-top.yaml",
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["diagnostics"] == [
        {
            "file": "broken/unknown-top.yaml",
            "line": 10,
            "column": 1,
            "message": "unknown field `specs` in the top level",
            "severity": "error",
            "hint": "did you mean `spec`?",
        },
        {
            "file": "data/misplaced-temperature.jsonl",
            "line": 1,
            "column": 70,
            "message": "request.temperature: unknown field `temperature` in GenerateContentRequest",
            "severity": "error",
            "hint": "did you mean generationConfig.temperature?",
        },
    ]


def test_validate_json_reports_a_broken_project_file_as_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text("endpoint: emulator\nparalelism: 4\n")
    result = _run("validate", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    [diagnostic] = json.loads(result.stdout)["diagnostics"]
    assert (diagnostic["file"], diagnostic["line"], diagnostic["column"]) == (
        "reconciler.yaml",
        2,
        1,
    )
    assert diagnostic["hint"] == "did you mean `parallelism`?"


def test_schema_prints_the_manifest_schema_with_descriptions() -> None:
    result = _run("schema", cwd=REPO)
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "reconciler BatchJob manifest (reconciler/v1)"
    assert (
        "Unique name of this batch job resource"
        in schema["$defs"]["Metadata"]["properties"]["name"]["description"]
    )
    project = json.loads(_run("schema", "--project", cwd=REPO).stdout)
    assert "parallelism" in project["properties"]


def test_schema_help_explains_the_editor_comment() -> None:
    result = _run("schema", "--help", cwd=REPO)
    assert "# yaml-language-server: $schema=" in result.stdout


def test_unknown_option_is_a_usage_error_with_exit_one() -> None:
    result = _run("validate", "--nope")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
