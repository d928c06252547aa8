"""A YAML document as plain data with the position of every value and key (`YamlDocument`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import SourceLocation

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One YAML document as plain JSON-like data, with the position of every value and key."""

    path: str
    """The file as shown to the user (relative to the project root where possible)."""
    data: Any
    values: dict[JsonPath, tuple[int, int]]
    """JSON path -> 1-based (line, column) of the value."""
    keys: dict[JsonPath, tuple[int, int]]
    """JSON path -> 1-based (line, column) of the mapping key that holds the value."""
    start: tuple[int, int] = (1, 1)
    careful: Callable[[], YamlDocument | None] | None = field(
        default=None, compare=False, repr=False
    )
    """For a document read on the fast path: re-reads it with the position-keeping parser.
    Positions above then come from libyaml's marks, which agree with it for what the fast path
    accepts; `at` still asks the careful parser, so every diagnostic is located by one parser."""

    def at(self, path: JsonPath, *, key: bool = False, exact: bool = True) -> SourceLocation:
        """The location of `path` (its key if `key`), else of its nearest present ancestor.

        `exact=False` skips re-reading a fast-path document: for recording where something was
        declared, when no diagnostic is being made (that would cost a slow parse per file)."""
        if exact and self.careful is not None:
            precise = self.careful()
            if precise is not None:
                return precise.at(path, key=key)
        probe = tuple(path)
        while True:
            table = self.keys if key and probe in self.keys else self.values
            if probe in table:
                line, column = table[probe]
                return SourceLocation(self.path, line, column)
            if not probe:
                return SourceLocation(self.path, *self.start)
            probe = probe[:-1]

    def resolve(self, loc: Sequence[str | int]) -> tuple[JsonPath, JsonPath]:
        """Split a validator's `loc` into the part present in the data and the rest.

        Validators add steps the data does not have (a union member's name, a model validator);
        those are skipped while later steps still match, so errors land on the right node."""
        found: JsonPath = ()
        node = self.data
        rest: list[str | int] = []
        for step in loc:
            in_mapping = isinstance(node, dict) and isinstance(step, str) and step in node
            in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
            if in_mapping or in_list:
                node = node[step]
                found = (*found, step)
                rest = []
            else:
                rest.append(step)
        return found, tuple(rest)
