"""A JSON body read against a proto message, refused as Google's front end refuses it.

The service parses every JSON body into its proto message before anything else runs, and a body
the message cannot hold is a 400 INVALID_ARGUMENT whose message lists one line per problem, each
also a google.rpc.BadRequest field violation. The wordings are the parser's, as public captures
of the service show them (docs/emulator-conformance.md, "Request bodies"):

- an unknown name: `Invalid JSON payload received. Unknown name "x" at 'batch': Cannot find
  field.` (at the root: `Unknown name "x": Cannot find field.`, a violation without a field);
- a list where one value goes: `Unknown name "x" at 'batch': Proto field is not repeating,
  cannot start list.`;
- an object where a scalar goes: `Invalid value at 'batch' (display_name), Starting an object
  on a scalar field`;
- a wrong scalar: `Invalid value at 'batch.priority' (TYPE_INT64), "abc"`; a scalar where a
  message or enum goes: `Invalid value at 'batch.input_config'
  (type.googleapis.com/google.ai.generativelanguage.v1beta.InputConfig), "x"`.

Paths use the proto (snake_case) names with `[i]` indexes; both JSON spellings of a name
(camelCase and snake_case) are the same field. A single value given for a repeated field is one
element, as the proto-JSON stream parser takes it; `null` is the field's default.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

Violation = tuple[str | None, str]
"""(field path, or None at the root; description)."""

_INVALID = "Invalid JSON payload received."
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_WELL_KNOWN = {
    "timestamp": "google.protobuf.Timestamp",
    "duration": "google.protobuf.Duration",
    "struct": "google.protobuf.Struct",
}


@dataclasses.dataclass(frozen=True)
class Field:
    """One field: a scalar kind (`string`, `bool`, `bytes`, `int32`, `int64`, `uint32`,
    `uint64`, `double`, `float`), a well-known type (`timestamp`, `duration`, `struct`, `value`:
    any JSON), `enum` or `message` (named by `ref`)."""

    kind: str
    ref: str = ""
    repeated: bool = False


@dataclasses.dataclass(frozen=True)
class Message:
    """A message's fields by proto name; `open` messages are checked as objects only (their
    fields are not modelled here, so no name in them is refused)."""

    name: str
    fields: Mapping[str, Field] = dataclasses.field(default_factory=dict)
    open: bool = False

    @functools.cached_property
    def _by_json_name(self) -> dict[str, tuple[str, Field]]:
        names = {_camel(name): (name, field) for name, field in self.fields.items()}
        return names | {name: (name, field) for name, field in self.fields.items()}

    def lookup(self, json_name: str) -> tuple[str, Field] | None:
        """The proto name and field of a JSON name in either spelling."""
        return self._by_json_name.get(json_name)


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclasses.dataclass(frozen=True)
class Schema:
    """Messages and enums of one API, named without their package."""

    package: str
    messages: Mapping[str, Message]
    enums: Mapping[str, frozenset[str]]

    def type_url(self, name: str, version: str) -> str:
        if name in _WELL_KNOWN.values():
            return f"type.googleapis.com/{name}"
        return f"type.googleapis.com/{self.package}.{version}.{name}"

    def check(
        self, body: Any, root: str, version: str, *, accept_unknown: bool = False
    ) -> list[Violation]:
        """Every problem of `body` read as the message `root`, in body order
        (`accept_unknown`: unknown names are skipped, not refused)."""
        if not isinstance(body, dict):
            return [(None, f'{_INVALID} Unknown name "": Root element must be a message.')]
        walk = _Walk(self, version, accept_unknown)
        return list(walk.message(body, self.messages[root], ""))


def _at(path: str) -> str:
    return f" at '{path}'" if path else ""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Walk:
    def __init__(self, schema: Schema, version: str, accept_unknown: bool) -> None:
        self.schema = schema
        self.version = version
        self.accept_unknown = accept_unknown

    def message(self, body: dict[str, Any], message: Message, path: str) -> Iterator[Violation]:
        if message.open:
            return
        for key, value in body.items():
            found = message.lookup(key)
            if found is None:
                if self.accept_unknown:
                    continue
                yield (
                    path or None,
                    f'{_INVALID} Unknown name "{key}"{_at(path)}: Cannot find field.',
                )
                continue
            name, field = found
            if value is None:
                continue
            if isinstance(value, list):
                if not field.repeated:
                    yield (
                        path or None,
                        f'{_INVALID} Unknown name "{key}"{_at(path)}: Proto field is not'
                        " repeating, cannot start list.",
                    )
                    continue
                for index, item in enumerate(value):
                    yield from self.value(item, field, name, path, f"{_join(path, name)}[{index}]")
            else:
                yield from self.value(value, field, name, path, _join(path, name))

    def value(
        self, value: Any, field: Field, name: str, parent: str, path: str
    ) -> Iterator[Violation]:
        if value is None:
            return
        if field.kind == "message":
            if isinstance(value, dict):
                yield from self.message(value, self.schema.messages[field.ref], path)
            else:
                yield self._invalid(path, self.schema.type_url(field.ref, self.version), value)
            return
        if field.kind == "value":
            return
        if field.kind == "struct":
            if not isinstance(value, dict):
                yield self._invalid(path, self.schema.type_url(_WELL_KNOWN["struct"], ""), value)
            return
        if isinstance(value, dict):
            at = f" at '{parent}'" if parent else ""
            yield (
                parent or None,
                f"Invalid value{at} ({name}), Starting an object on a scalar field",
            )
            return
        if isinstance(value, list):  # a list inside a list
            yield (
                path,
                f"{_INVALID} Unknown name \"{name}\" at '{parent}': Proto field is not"
                " repeating, cannot start list.",
            )
            return
        if not self._scalar_ok(value, field):
            yield self._wrong_scalar(value, field, path)

    def _wrong_scalar(self, value: Any, field: Field, path: str) -> Violation:
        if field.kind == "enum":
            return self._invalid(path, self.schema.type_url(field.ref, self.version), value)
        if field.kind in _WELL_KNOWN:
            return self._invalid(path, self.schema.type_url(_WELL_KNOWN[field.kind], ""), value)
        if field.kind == "bytes" and isinstance(value, str):
            return (
                path,
                f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed"
                f" for {json.dumps(value)}",
            )
        return self._invalid(path, f"TYPE_{field.kind.upper()}", value)

    def _invalid(self, path: str, type_name: str, value: Any) -> Violation:
        return (path, f"Invalid value at '{path}' ({type_name}), {json.dumps(value)}")

    def _scalar_ok(self, value: Any, field: Field) -> bool:
        kind = field.kind
        if kind == "string":
            return isinstance(value, str)
        if kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if kind in _INT_RANGES:
            return _integer(value, *_INT_RANGES[kind])
        if kind in ("double", "float"):
            return isinstance(value, int | float) or (isinstance(value, str) and _number(value))
        if kind == "bytes":
            return isinstance(value, str) and _base64(value)
        if kind == "enum":
            known = self.schema.enums[field.ref]
            return (isinstance(value, str) and value in known) or _integer(value, 0, 2**31 - 1)
        if kind == "timestamp":
            return isinstance(value, str) and bool(_TIMESTAMP.match(value))
        if kind == "duration":
            return isinstance(value, str) and bool(_DURATION.match(value))
        raise AssertionError(f"unknown field kind {kind!r}")


def _integer(value: Any, low: int, high: int) -> bool:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        text = value.strip()
        digits = text.lstrip("-").lstrip("0") or "0"
        if len(digits) > 20:  # past every range here; int() refuses thousands of digits
            return False
        value = -int(digits) if text.startswith("-") else int(digits)
    return isinstance(value, int) and low <= value <= high


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _base64(text: str) -> bool:
    """Standard or URL-safe base64, padded or not (proto-JSON parsers take both)."""
    cleaned = text.replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
