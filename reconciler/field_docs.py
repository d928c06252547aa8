"""Field docstrings as JSON Schema descriptions, read when a schema is written.

The models of `reconciler.yaml`, of a manifest and of the JSON plan document carry a docstring
under each field, written for users: editors show them from the committed schemas. pydantic can
read them when each class is created (`use_attribute_docstrings`), by finding the class in the
call stack and parsing its source: ~60 ms at the start of every command, for descriptions only
`reconciler schema` and the schema tests ask for. `DocumentedSchema` reads them instead while a
schema is generated, with pydantic's rule: a string statement right after a field's annotated
assignment in the class body is its description, unless the field names one itself; an inherited
field keeps the docstring of the class that declared it.
"""

from __future__ import annotations

import ast
import inspect
import sys
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema


class DocumentedSchema(GenerateJsonSchema):
    """JSON Schema generation (a `schema_generator`) that describes each model field with its
    docstring, as `use_attribute_docstrings` would have."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._models: list[type[Any]] = []

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        self._models.append(schema["cls"])
        try:
            return super().model_schema(schema)
        finally:
            self._models.pop()

    def model_fields_schema(self, schema: core_schema.ModelFieldsSchema) -> JsonSchemaValue:
        model = self._models[-1] if self._models else None
        if model is not None and issubclass(model, BaseModel):
            schema = {**schema, "fields": _described(schema["fields"], model)}
        return super().model_fields_schema(schema)


def _described(
    fields: dict[str, core_schema.ModelField], model: type[BaseModel]
) -> dict[str, core_schema.ModelField]:
    """`fields` (a model's core schema fields) with each docstring where pydantic puts a
    field's own description (`pydantic_js_updates`), so the JSON Schema is generated as if the
    field had been created with it."""
    docs = field_docstrings(model)
    described = dict(fields)
    for name, field in fields.items():
        doc = docs.get(name)
        info = model.model_fields.get(name)
        if doc is None or info is None or info.description is not None:
            continue
        metadata = dict(field.get("metadata") or {})
        metadata["pydantic_js_updates"] = {
            **metadata.get("pydantic_js_updates", {}),
            "description": doc,
        }
        described[name] = {**field, "metadata": metadata}
    return described


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring under its declaration, in `model` or the base that declared
    it (the nearest)."""
    docs: dict[str, str] = {}
    for klass in model.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        declared = inspect.get_annotations(klass)
        for name, doc in _class_docstrings(klass).items():
            if name in declared:
                docs.setdefault(name, doc)
    return docs


@cache
def _class_docstrings(klass: type[Any]) -> dict[str, str]:
    node = _class_node(klass)
    if node is None:
        return {}
    docs: dict[str, str] = {}
    for statement, following in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _class_node(klass: type[Any]) -> ast.ClassDef | None:
    """The definition of `klass` in its module's source (found by qualified name)."""
    tree = _module_tree(klass.__module__)
    if tree is None:
        return None
    body: list[ast.stmt] = tree.body
    found: ast.ClassDef | None = None
    for part in klass.__qualname__.split("."):
        found = next((s for s in body if isinstance(s, ast.ClassDef) and s.name == part), None)
        if found is None:
            return None
        body = found.body
    return found


@cache
def _module_tree(name: str) -> ast.Module | None:
    module = sys.modules.get(name)
    try:
        return ast.parse(inspect.getsource(module)) if module is not None else None
    except (OSError, TypeError):  # no source (a frozen or compiled-only install)
        return None
