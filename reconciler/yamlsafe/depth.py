"""The nesting depth, checked on the event stream before either parser composes a document: both
compose recursively, so a deep file would overflow libyaml's C stack or Python's recursion limit."""

from __future__ import annotations

import re

from reconciler.errors import Diagnostic, SourceLocation
from reconciler.yamlsafe.parsers import events

MAX_YAML_DEPTH = 64
"""Mappings and lists nested in one another (flow `[`/`{` or block indentation). A manifest
needs about ten; deeper documents are refused before either parser builds them, because both
compose recursively: libyaml's composer overflows the C stack (SIGSEGV) and the pure-Python one
the recursion limit."""

_BLOCK_PREFIX = re.compile(r"^[ ]*(?:[-?][ ]+)*", re.MULTILINE)
_START_EVENTS = ("MappingStartEvent", "SequenceStartEvent")
_END_EVENTS = ("MappingEndEvent", "SequenceEndEvent")


def _nesting_bound(text: str) -> int:
    """A cheap upper bound of the nesting depth: every flow opener counts, and block nesting
    needs more indentation or a `- `/`? ` marker per level (twice: a block sequence may sit at
    its parent key's indentation). Loose, but it keeps the exact check off ordinary files."""
    flow = text.count("[") + text.count("{")
    block = max((len(m.group(0)) for m in _BLOCK_PREFIX.finditer(text)), default=0)
    return flow + 2 * block + 2


def depth_problem(text: str, shown: str) -> Diagnostic | None:
    """A diagnostic at the first collection nested deeper than MAX_YAML_DEPTH, else None.

    Only event parsers run here, and both keep explicit stacks instead of recursing; the walk
    stops at the first level too many, so a hostile file costs no more than its first levels.
    Syntax errors are left for the careful parser to word."""
    if _nesting_bound(text) <= MAX_YAML_DEPTH:
        return None
    depth = 0
    try:
        for event in events(text):
            name = type(event).__name__
            if name in _START_EVENTS:
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    mark = event.start_mark
                    return Diagnostic(
                        f"mappings and lists are nested more than {MAX_YAML_DEPTH} levels deep "
                        "here; refusing to read further",
                        SourceLocation(shown, mark.line + 1, mark.column + 1),
                        hint="manifests need about ten levels; put deep request data in a JSONL file",
                    )
            elif name in _END_EVENTS:
                depth -= 1
    except Exception:
        return None
    return None
