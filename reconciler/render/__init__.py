"""Renderers: Plan / status -> text, JSON or Markdown. Pure functions of their inputs."""

from reconciler.render.json import plan_document, plan_json_schema, plan_schema_text, render_json
from reconciler.render.markdown import GITHUB_MAX_CHARS, render_markdown
from reconciler.render.status import (
    StatusRow,
    render_status_json,
    render_status_text,
    status_rows,
)
from reconciler.render.text import render_text

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
