"""field_docs.py: field docstrings become schema descriptions when a schema is generated, as
pydantic's `use_attribute_docstrings` made them when each class was created (that cost every
command ~60 ms of start-up). The committed schemas staying byte for byte the same is
tests/unit/manifests/test_manifest_schema.py's and tests/unit/render/test_render_golden.py's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, Field

from reconciler.field_docs import DocumentedSchema, field_docstrings


class Inner(BaseModel):
    """An inner model."""

    size: int = 1
    """How big."""


class Base(BaseModel):
    kept: str = "k"
    """Declared here, inherited as is."""
    redeclared: str = "r"
    """The base's words."""


class Outer(Base):
    redeclared: str = "s"
    """The subclass's words."""
    named: int = Field(default=0, description="Given in Field: wins over the docstring.")
    """Not used."""
    inner: Inner
    """An inner model."""
    other: Inner | None = None
    """A field of its own, with its own words."""
    undocumented: int = 0
    after_a_blank_statement: int = 0
    pass
    """Not right after the field: not its docstring."""

    class Nested(BaseModel):
        deep: int = 0
        """Deep inside."""

    nested: Nested | None = None
    """A model declared in the class."""


def test_descriptions_are_the_field_docstrings_as_pydantic_reads_them() -> None:
    schema = Outer.model_json_schema(schema_generator=DocumentedSchema)

    properties = schema["properties"]
    described = {name: p.get("description") for name, p in properties.items()}
    assert described == {
        "kept": "Declared here, inherited as is.",
        "redeclared": "The subclass's words.",
        "named": "Given in Field: wins over the docstring.",
        # The same words as the referenced model's own description: dropped, as pydantic does.
        "inner": None,
        "other": "A field of its own, with its own words.",
        "undocumented": None,
        "after_a_blank_statement": None,
        "nested": "A model declared in the class.",
    }
    assert schema["$defs"]["Inner"]["properties"]["size"]["description"] == "How big."
    assert schema["$defs"]["Nested"]["properties"]["deep"]["description"] == "Deep inside."


def test_without_the_generator_models_carry_no_field_descriptions() -> None:
    # Nothing is read when the classes are created: start-up pays for no source parsing.
    assert Outer.model_fields["kept"].description is None
    assert "description" not in Outer.model_json_schema()["properties"]["kept"]


def test_an_inherited_field_keeps_the_docstring_of_the_class_that_declared_it() -> None:
    docs = field_docstrings(Outer)

    assert docs["kept"] == "Declared here, inherited as is."
    assert docs["redeclared"] == "The subclass's words."


_MODELS = '''
from __future__ import annotations
from pydantic import BaseModel, ConfigDict, Field

CONFIG = ConfigDict({config})


class Leaf(BaseModel):
    """A leaf."""

    model_config = CONFIG
    weight: float = 0.5
    """How heavy."""


class Parent(BaseModel):
    model_config = CONFIG
    name: str
    """Who."""
    leaf: Leaf
    """A leaf."""
    leaves: list[Leaf] = []
    """Every other leaf."""


class Child(Parent):
    name: str = "c"
    """Who, with a default."""
    label: str = Field(default="", description="Said in Field.")
    """Ignored."""
'''


def _module(tmp_path: Path, name: str, config: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(_MODELS.format(config=config))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the annotations in the module's namespace
    spec.loader.exec_module(module)
    return module


def test_the_schema_equals_the_one_pydantic_writes_when_it_reads_docstrings_itself(
    tmp_path: Path,
) -> None:
    ours = _module(tmp_path, "docs_read_when_generating", "")
    pydantics = _module(tmp_path, "docs_read_by_pydantic", "use_attribute_docstrings=True")
    try:
        for name in ("Leaf", "Parent", "Child"):
            for mode in ("validation", "serialization"):
                mine = getattr(ours, name).model_json_schema(
                    mode=mode, schema_generator=DocumentedSchema
                )
                assert mine == getattr(pydantics, name).model_json_schema(mode=mode)
    finally:
        del sys.modules["docs_read_when_generating"], sys.modules["docs_read_by_pydantic"]
