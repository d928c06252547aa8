"""Located, helpful diagnostics for documents validated by pydantic models.

Turns a pydantic ValidationError on a YamlDocument into `file:line:col` diagnostics: unknown
fields at their key with a did-you-mean hint, missing fields at their parent, bad values at the
value. Used by the project file and the manifests; it reads nothing itself.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.errors import Diagnostic
from reconciler.yamlsafe import JsonPath, YamlDocument


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean X?` hint when `name` is close to one of `candidates` (difflib)."""
    pool = sorted(set(candidates))
    lowered = {c.lower().replace("_", ""): c for c in pool}
    folded = name.lower().replace("_", "").replace("-", "")
    if folded in lowered:
        return f"did you mean `{lowered[folded]}`?"
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.7)
    return f"did you mean `{close[0]}`?" if close else None


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold (Annotated, Optional and unions unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def model_fields_at(model: type[BaseModel], path: Sequence[str | int]) -> set[str] | None:
    """The field names the model accepts at `path` (for did-you-mean hints), if it is a model."""
    current: list[Any] = [model]
    for step in path:
        following: list[Any] = []
        for candidate in current:
            origin = typing.get_origin(candidate)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                field = candidate.model_fields.get(str(step))
                if field is not None:
                    following.extend(_unwrap(field.annotation))
            elif origin in (list, tuple) and isinstance(step, int):
                following.extend(_unwrap(typing.get_args(candidate)[0]))
            elif origin is dict and isinstance(step, str):
                following.extend(_unwrap(typing.get_args(candidate)[1]))
        current = following
    for candidate in current:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return set(candidate.model_fields)
    return None


def validation_diagnostics(
    error: ValidationError, document: YamlDocument, model: type[BaseModel], base: JsonPath = ()
) -> list[Diagnostic]:
    """Turn pydantic errors into located diagnostics: unknown fields at their key (with a
    did-you-mean), missing fields at their parent mapping, wrong values at the value."""
    diagnostics: list[Diagnostic] = []
    for item in error.errors(include_url=False, include_input=False):
        loc = tuple(item["loc"])
        found, rest = document.resolve((*base, *loc))
        kind = item["type"]
        message = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        shown = _dotted(found) or "the top level"
        if kind == "missing" and len(rest) == 1:
            diagnostics.append(
                Diagnostic(f"missing required field `{rest[0]}` in `{shown}`", document.at(found))
            )
        elif kind == "extra_forbidden":
            fields = model_fields_at(model, loc[:-1]) or set()
            name = str(loc[-1])
            hint = did_you_mean(name, fields)
            if hint is None and fields:
                hint = "allowed here: " + ", ".join(sorted(fields))
            parent = f"`{_dotted(found[:-1])}`" if found[:-1] else "the top level"
            diagnostics.append(
                Diagnostic(
                    f"unknown field `{name}` in {parent}",
                    document.at(found, key=True),
                    hint=hint,
                )
            )
        else:
            diagnostics.append(Diagnostic(f"`{shown}`: {message}", document.at(found)))
    return diagnostics


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text
