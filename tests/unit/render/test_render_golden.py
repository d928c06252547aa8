"""Renderers against golden files; set RECONCILER_UPDATE_GOLDEN=1 to rewrite them.

The JSON Schema at schemas/plan.schema.json is a golden file too: it must be what
reconciler.render.json generates, and every rendered plan must validate against it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from reconciler.render import (
    plan_schema_text,
    render_json,
    render_markdown,
    render_status_json,
    render_status_text,
    render_text,
    status_rows,
)
from tests.unit.render.samples import quiet_plan, zoo_inputs, zoo_plan

GOLDEN = Path(__file__).parent / "golden"
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "plan.schema.json"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with RECONCILER_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs: run with RECONCILER_UPDATE_GOLDEN=1"


PLANS = {"zoo": zoo_plan, "quiet": quiet_plan}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_text_rendering_matches_golden(name: str) -> None:
    check_golden(GOLDEN / f"{name}.txt", render_text(PLANS[name]()))


def test_coloured_text_rendering_matches_golden() -> None:
    text = render_text(zoo_plan(), color=True)
    assert "\033[" in text
    check_golden(GOLDEN / "zoo.color.txt", text)


def test_text_without_colour_has_no_escape_codes() -> None:
    assert "\033" not in render_text(zoo_plan())


@pytest.mark.parametrize("name", sorted(PLANS))
def test_markdown_rendering_matches_golden(name: str) -> None:
    check_golden(GOLDEN / f"{name}.md", render_markdown(PLANS[name]()))


@pytest.mark.parametrize("name", sorted(PLANS))
def test_json_rendering_matches_golden(name: str) -> None:
    check_golden(GOLDEN / f"{name}.json", render_json(PLANS[name]()))


def test_status_rendering_matches_golden() -> None:
    d, s, lv, _ = zoo_inputs()
    rows = status_rows(d, s, lv, zoo_plan())
    check_golden(GOLDEN / "status.txt", render_status_text(rows))
    check_golden(GOLDEN / "status.json", render_status_json(rows))


def test_published_schema_is_current() -> None:
    check_golden(SCHEMA, plan_schema_text())


@pytest.mark.parametrize("name", sorted(PLANS))
def test_rendered_plans_validate_against_the_schema(name: str) -> None:
    schema = json.loads(plan_schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(render_json(PLANS[name]()))
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    for action in document["actions"]:
        assert {"kind", "resource", "reason", "diff", "summary"} <= action.keys()
    assert document["format_version"] == 1
