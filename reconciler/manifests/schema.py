"""JSON Schema documents for manifests and reconciler.yaml, generated from the pydantic models.

Field docstrings become `description`s (read as the schema is generated: field_docs.py), so what an editor shows and what the code accepts
cannot drift. The committed copies live in `schemas/`; a test keeps them up to date.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.config import ProjectConfig
from reconciler.field_docs import DocumentedSchema
from reconciler.manifests.model import BatchJobManifest

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MANIFEST_SCHEMA_FILE = "schemas/batchjob.schema.json"
PROJECT_SCHEMA_FILE = "schemas/project.schema.json"


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a `kind: BatchJob` manifest."""
    schema = BatchJobManifest.model_json_schema(
        mode="validation", schema_generator=DocumentedSchema
    )
    return {
        "$schema": DRAFT,
        "title": "reconciler BatchJob manifest (reconciler/v1)",
        **_without_title(schema),
    }


def project_schema() -> dict[str, Any]:
    """The JSON Schema of the project file `reconciler.yaml`."""
    schema = ProjectConfig.model_json_schema(mode="validation", schema_generator=DocumentedSchema)
    return {
        "$schema": DRAFT,
        "title": "reconciler project file (reconciler.yaml)",
        **_without_title(schema),
    }


def render(schema: dict[str, Any]) -> str:
    """Stable text for a schema: the committed files are compared byte for byte."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _without_title(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}
