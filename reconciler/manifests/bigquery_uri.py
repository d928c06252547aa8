"""BigQuery table URIs (`bq://project.dataset.table`): their shape, and their parts.

Pure: the manifest model checks sources and outputs with it, the Vertex adapter splits them for
the BigQuery REST API. The rules are BigQuery's own, narrowed to what a URI can carry: a
project id (6..30 lower-case letters, digits and `-`, starting with a letter; or a
domain-scoped `example.com:project`), a dataset id (letters, digits and `_`, at most 1024),
and a table id (letters, digits, `_` and `-`, at most 1024; Unicode table names and spaces are
left out, as a URI cannot carry them unquoted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "bq://"
EXPECTED = "bq://project.dataset.table"
_TABLE_URI = re.compile(
    r"^bq://(?P<project>(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"\.(?P<dataset>[A-Za-z0-9_]{1,1024})"
    r"\.(?P<table>[A-Za-z0-9_-]{1,1024})$"
)


@dataclass(frozen=True, slots=True)
class TableRef:
    """One BigQuery table."""

    project: str
    dataset: str
    table: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.project}.{self.dataset}.{self.table}"


def is_bigquery(value: str) -> bool:
    """Whether `value` is meant as a BigQuery URI (well formed or not)."""
    return value.startswith(SCHEME)


def table_problem(value: str) -> str | None:
    """Why `value` is not a BigQuery table URI, or None when it is one."""
    if _TABLE_URI.match(value) is not None:
        return None
    rest = value.removeprefix(SCHEME)
    parts = rest.split(".") if rest else []
    if len(parts) < 3 and ":" not in rest:
        return (
            f"`{value}` is not a BigQuery table URI: expected {EXPECTED} "
            f"(three dot-separated parts, got {len(parts)})"
        )
    return (
        f"`{value}` is not a BigQuery table URI: expected {EXPECTED}, with a project id of "
        "6-30 lower-case letters, digits or '-', a dataset of letters, digits or '_', and a "
        "table of letters, digits, '_' or '-'"
    )


def parse_table(value: str) -> TableRef:
    """The parts of a well-formed table URI.

    Raises:
        ValueError: `value` is not one (with `table_problem`'s words).
    """
    match = _TABLE_URI.match(value)
    if match is None:
        raise ValueError(table_problem(value))
    return TableRef(match.group("project"), match.group("dataset"), match.group("table"))
