"""Renderers: Plan / status -> text, JSON or Markdown. Pure functions of their inputs.

The names below are loaded on first use (PEP 562): a run needs one renderer, and `text` alone
must not load the JSON document's pydantic models, Markdown and status (`apply` renders text).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.render.json import (
        plan_document,
        plan_json_schema,
        plan_schema_text,
        render_json,
    )
    from reconciler.render.markdown import GITHUB_MAX_CHARS, render_markdown
    from reconciler.render.status import (
        StatusRow,
        render_status_json,
        render_status_text,
        status_rows,
    )
    from reconciler.render.text import render_text

_WHERE = {
    "plan_document": "json",
    "plan_json_schema": "json",
    "plan_schema_text": "json",
    "render_json": "json",
    "GITHUB_MAX_CHARS": "markdown",
    "render_markdown": "markdown",
    "StatusRow": "status",
    "render_status_json": "status",
    "render_status_text": "status",
    "status_rows": "status",
    "render_text": "text",
}

__all__ = [
    "GITHUB_MAX_CHARS",
    "StatusRow",
    "plan_document",
    "plan_json_schema",
    "plan_schema_text",
    "render_json",
    "render_markdown",
    "render_status_json",
    "render_status_text",
    "render_text",
    "status_rows",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
