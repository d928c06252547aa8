"""Loading costs a small, fixed amount per manifest: thousands of manifests load in seconds.

Each test counts work that once grew with the number of manifests (the root resolved ten times
per manifest, every clean file parsed a second time by the careful parser) on a real project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import yamlsafe
from reconciler.config import Project
from reconciler.manifests.loader import load

MANIFESTS = 12


def write_manifests(project: Project, count: int = MANIFESTS) -> None:
    for i in range(count):
        line = {"key": "k", "request": {"contents": [{"parts": [{"text": str(i)}]}]}}
        (project.root / "data" / f"in{i}.jsonl").write_text(json.dumps(line) + "\n")
        (project.root / "manifests" / f"m{i}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: BatchJob\n"
            f"metadata:\n  name: m{i}\nspec:\n  model: gemini-2.5-flash\n"
            f"  source:\n    file: data/in{i}.jsonl\n  output: results/m{i}.jsonl\n"
        )


def test_each_manifest_resolves_only_its_own_paths(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root once per run; per manifest its file, its output and its input."""
    write_manifests(tmp_project)
    calls = 0
    real = Path.resolve

    def counting(self: Path, strict: bool = False) -> Path:
        nonlocal calls
        calls += 1
        return real(self, strict)

    monkeypatch.setattr(Path, "resolve", counting)
    result = load(tmp_project)
    assert result.desired is not None and len(result.desired.resources) == MANIFESTS
    assert calls <= 3 * MANIFESTS + 10


def test_clean_manifests_are_never_parsed_by_the_careful_parser(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The position-keeping parser is for diagnostics; a clean project needs none."""
    write_manifests(tmp_project)
    careful = 0
    real = yamlsafe._careful_documents

    def counting(text: str, shown: str) -> tuple[list[yamlsafe.YamlDocument], list[object]]:
        nonlocal careful
        careful += 1
        return real(text, shown)  # type: ignore[return-value]

    monkeypatch.setattr(yamlsafe, "_careful_documents", counting)
    result = load(tmp_project)
    assert result.desired is not None and len(result.desired.resources) == MANIFESTS
    assert careful == 0
