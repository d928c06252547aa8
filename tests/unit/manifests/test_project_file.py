"""reconciler.yaml errors are located at file:line:col like manifest errors, and overrides are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_project
from reconciler.errors import ConfigError


def _project_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "reconciler.yaml").write_text(text)
    return tmp_path


def test_unknown_setting_is_located_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(_project_file(tmp_path, "endpoint: emulator\nstat: s.json\n"), environ={})
    assert str(caught.value.location) == "reconciler.yaml:2:1"
    assert caught.value.message == "unknown field `stat` in the top level"
    assert caught.value.hint == "did you mean `state`?"


def test_wrong_nested_value_is_located_at_the_value(tmp_path: Path) -> None:
    text = "emulator:\n  job_seconds: soon\n"
    with pytest.raises(ConfigError) as caught:
        load_project(_project_file(tmp_path, text), environ={})
    assert str(caught.value.location) == "reconciler.yaml:2:16"
    assert "`emulator.job_seconds`: Input should be a valid number" in caught.value.message


def test_yaml_syntax_error_in_the_project_file_is_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(_project_file(tmp_path, "endpoint: [emulator\nstate: x\n"), environ={})
    assert str(caught.value.location).startswith("reconciler.yaml:2:")
    assert caught.value.message.startswith("YAML syntax error")


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(
            _project_file(tmp_path, "endpoint: emulator\n"),
            environ={"RECONCILER_PARALLELISM": "lots"},
        )
    assert caught.value.message.startswith("RECONCILER_PARALLELISM: `parallelism`:")


def test_repository_project_file_runs_the_demo_on_the_emulator() -> None:
    project = load_project(Path(__file__).resolve().parents[3], environ={})
    assert project.config.endpoint == "emulator"
    assert project.config.state == "state/reconciler.state.json"
    assert project.config.emulator.job_seconds == 2
