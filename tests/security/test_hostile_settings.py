"""The settings the attack names (`limits:`, `cleanup:`, `vertex:`, `spec.priority`) take only
their own type: a bool, a quoted number or a string that is not an int is refused with the
file, line and field, never read as 1, 10 or False."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_project
from reconciler.errors import ConfigError, Diagnostic
from reconciler.manifests.loader import validate_paths

pytestmark = pytest.mark.hostile_input

MANIFEST = (
    "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: a\nspec:\n"
    "  model: gemini-2.5-flash\n{priority}"
    "  source:\n    requests:\n      - key: k1\n"
    "        request: {{contents: [{{parts: [{{text: hi}}]}}]}}\n"
    "  output: out/a.jsonl\n"
)


def _project(tmp_path: Path, settings: str = "", priority: str = "") -> Path:
    root = tmp_path / "repo"
    (root / "manifests").mkdir(parents=True)
    (root / "reconciler.yaml").write_text("endpoint: emulator\n" + settings)
    (root / "manifests" / "a.yaml").write_text(MANIFEST.format(priority=priority))
    return root


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("limits: {tier: true}", "limits.tier"),
        ("limits: {tier: '2'}", "limits.tier"),
        ("limits: {storage_bytes: '10'}", "limits.storage_bytes"),
        ("limits: {storage_bytes: 1.5}", "limits.storage_bytes"),
        ("limits: {file_bytes: false}", "limits.file_bytes"),
        ("limits: {enqueued_tokens: {gemini-2.5-flash: true}}", "limits.enqueued_tokens"),
        ("limits: {enqueued_tokens: {gemini-2.5-flash: -1}}", "limits.enqueued_tokens"),
        ("cleanup: {inputs: 'no'}", "cleanup.inputs"),
        ("cleanup: {inputs: 'false'}", "cleanup.inputs"),
        ("cleanup: {results: 1}", "cleanup.results"),
        ("cleanup: {results: 0}", "cleanup.results"),
        ("cleanup: {inputs: null}", "cleanup.inputs"),
        ("cleanup: {everything: true}", "cleanup"),
        ("vertex: {location: 'evil.example/'}", "vertex.location"),
        ("vertex: {location: true}", "vertex.location"),
        ("vertex: {project: 'p/../../x'}", "vertex.project"),
    ],
)
def test_a_setting_of_the_wrong_type_is_refused_with_its_place(
    tmp_path: Path, setting: str, field: str
) -> None:
    root = _project(tmp_path, setting + "\n")
    with pytest.raises(ConfigError) as refused:
        load_project(root, environ={})
    assert str(refused.value).startswith("reconciler.yaml:2:"), str(refused.value)
    assert f"`{field}" in refused.value.message


@pytest.mark.parametrize(
    "priority",
    [
        "true",
        "false",
        "'5'",
        "1.0",
        "abc",
        "[1]",
        "{a: 1}",
        str(2**63),
        str(-(2**63) - 1),
        "9" * 5_000,
    ],
)
@pytest.mark.parametrize("spelling", ["spec", "config"])
def test_a_priority_that_is_not_an_int64_is_a_located_diagnostic(
    tmp_path: Path, priority: str, spelling: str
) -> None:
    line = (
        f"  priority: {priority}\n"
        if spelling == "spec"
        else f"  config: {{priority: {priority}}}\n"
    )
    root = _project(tmp_path, priority=line)
    diagnostics: list[Diagnostic] = validate_paths(load_project(root, environ={}))
    assert diagnostics, f"priority {priority!r} was accepted"
    (first, *_) = diagnostics
    assert first.location is not None and first.location.line == 7
    assert "priority" in first.message or "quote it" in str(first)


@pytest.mark.parametrize("priority", [str(2**63 - 1), str(-(2**63)), "0", "-3"])
def test_every_int64_priority_is_taken(tmp_path: Path, priority: str) -> None:
    root = _project(tmp_path, priority=f"  priority: {priority}\n")
    assert validate_paths(load_project(root, environ={})) == []
