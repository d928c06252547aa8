"""The JSON Schema: generated from the models, committed up to date, and accepting every manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from reconciler.manifests.schema import manifest_schema, project_schema, render

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = sorted(
    p
    for base in (REPO / "manifests", REPO / "examples")
    for p in base.rglob("*.y*ml")
    if p.name != "reconciler.yaml"
    and "github" not in p.relative_to(REPO).parts
    and "manifests" in p.parts
)
PROJECT_FILES = sorted([REPO / "reconciler.yaml", *(REPO / "examples").glob("*/reconciler.yaml")])


def _documents(path: Path) -> list[Any]:
    return [
        doc for doc in YAML(typ="safe", pure=True).load_all(path.read_text()) if doc is not None
    ]


def test_committed_schemas_are_up_to_date() -> None:
    assert (REPO / "schemas" / "batchjob.schema.json").read_text() == render(manifest_schema()), (
        "run: reconciler schema -o schemas/batchjob.schema.json"
    )
    assert (REPO / "schemas" / "project.schema.json").read_text() == render(project_schema()), (
        "run: reconciler schema --project -o schemas/project.schema.json"
    )


def test_there_are_manifests_to_check() -> None:
    names = {p.relative_to(REPO).as_posix() for p in MANIFESTS}
    assert len(MANIFESTS) >= 8 and "manifests/eval-summaries.yaml" in names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_repository_manifest_validates_against_the_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(
        json.loads((REPO / "schemas" / "batchjob.schema.json").read_text())
    )
    for document in _documents(path):
        validator.validate(document)


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_project_file_validates_against_the_project_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(
        json.loads((REPO / "schemas" / "project.schema.json").read_text())
    )
    for document in _documents(path):
        validator.validate(document)


def test_schema_rejects_what_the_models_reject() -> None:
    validator = jsonschema.Draft202012Validator(manifest_schema())
    good = _documents(REPO / "manifests" / "eval-summaries.yaml")[0]
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "spce": {}})
    assert not validator.is_valid({**good, "kind": "Job"})
    assert not validator.is_valid({**good, "spec": {**good["spec"], "task": "summarise"}})


def test_every_manifest_field_carries_a_description_for_editors() -> None:
    schema = manifest_schema()
    missing = []
    for name, definition in schema["$defs"].items():
        for field, spec in definition.get("properties", {}).items():
            if "description" not in spec and "$ref" not in spec:
                missing.append(f"{name}.{field}")
        if "enum" not in definition and "description" not in definition:
            missing.append(name)
    assert missing == []


def test_check_jsonschema_cli_accepts_the_single_document_manifests() -> None:
    import subprocess
    import sys

    # check-jsonschema reads one document per file; multi-document files are covered above.
    single = [p for p in MANIFESTS if "\n---" not in p.read_text()]
    assert len(single) >= 7
    checker = Path(sys.executable).with_name("check-jsonschema")
    if not checker.exists():  # the lint extra; CI's lowest-versions job runs without it
        pytest.skip("check-jsonschema is not installed (pip install -e '.[lint]')")
    result = subprocess.run(
        [
            str(checker),
            "--schemafile",
            str(REPO / "schemas" / "batchjob.schema.json"),
            *map(str, single),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
