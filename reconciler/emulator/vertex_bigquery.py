"""BigQuery as the Vertex routes need it: read a source table's rows, append result rows.

Vertex AI batch jobs for Gemini read a BigQuery source table (a `request` column holding each
GenerateContentRequest as JSON; its other columns are passed through) and write a BigQuery
destination table: the source's columns, then `response` (JSON), `status` (the error of a
failed request, empty when it succeeded) and `processed_time`. The emulator does the same
against a real BigQuery emulator (bqemulator) over BigQuery's REST API, with the standard
library only (the emulator stays standalone: no google-cloud-bigquery import).

A destination table is created by the job (its dataset must exist); Vertex refuses a table
that exists ("the Dataset must exist and table must not exist", `BigQueryDestination.outputUri`
in Vertex's API reference): create answers 400 for one, and a job that finds its table made
by someone else meanwhile ends FAILED. Where BigQuery is: the emulator setting `bigquery_url`, else
`BIGQUERY_EMULATOR_HOST`, else nothing (a job naming a table then fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

_TIMEOUT = 60.0
_PAGE = 500
_TABLE = re.compile(
    r"^bq://(?P<project>(?:[a-z0-9.-]+:)?[a-z0-9-]+)\.(?P<dataset>[A-Za-z0-9_]+)"
    r"\.(?P<table>[A-Za-z0-9_-]+)$"
)
RESULT_COLUMNS = (
    {"name": "response", "type": "JSON", "mode": "NULLABLE"},
    {"name": "status", "type": "STRING", "mode": "NULLABLE"},
    {"name": "processed_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
)
"""The columns a job adds after the source's own (Vertex's Gemini batch output table)."""


class BigQueryError(Exception):
    """A BigQuery call failed; `status` is the HTTP status (404: no such table)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def bigquery_url(setting: str | None) -> str | None:
    """The BigQuery endpoint: the setting, else `BIGQUERY_EMULATOR_HOST`, else None."""
    value = (setting or os.environ.get("BIGQUERY_EMULATOR_HOST", "")).strip().rstrip("/")
    if value and "://" not in value:
        value = f"http://{value}"
    return value or None


def split_table(uri: str) -> tuple[str, str, str]:
    """`bq://p.d.t` -> (`p`, `d`, `t`).

    Raises:
        ValueError: not a BigQuery table URI.
    """
    match = _TABLE.match(uri)
    if match is None:
        raise ValueError(f"{uri!r} is not a BigQuery table URI (bq://project.dataset.table)")
    return match.group("project"), match.group("dataset"), match.group("table")


def _path(uri: str) -> str:
    project, dataset, table = split_table(uri)
    quote = urllib.parse.quote
    return (
        f"/bigquery/v2/projects/{quote(project, safe=':')}/datasets/{quote(dataset)}"
        f"/tables/{quote(table)}"
    )


def _call(base: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise BigQueryError(exc.code, _message(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise BigQueryError(503, f"BigQuery is unreachable: {exc}") from None


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"BigQuery answered {exc.code}"


def schema(base: str, uri: str) -> list[dict[str, Any]]:
    """The table's columns (tables.get), as BigQuery describes them."""
    found = _call(base, _path(uri))
    return list((found.get("schema") or {}).get("fields") or [])


def rows(base: str, uri: str) -> Iterator[dict[str, Any]]:
    """Every row of the table as {column: value}, JSON columns parsed, a page at a time."""
    fields = schema(base, uri)
    token: str | None = None
    while True:
        query = {"maxResults": str(_PAGE)}
        if token:
            query["pageToken"] = token
        page = _call(base, f"{_path(uri)}/data", query=query)
        for row in page.get("rows") or ():
            values: dict[str, Any] = {}
            for field, cell in zip(fields, row.get("f") or (), strict=False):
                value = cell.get("v")
                if field.get("type") == "JSON" and isinstance(value, str):
                    with contextlib.suppress(json.JSONDecodeError):
                        value = json.loads(value)
                values[field["name"]] = value
            yield values
        token = page.get("pageToken")
        if not token or not page.get("rows"):
            return


def table_exists(base: str, uri: str) -> bool:
    """Whether the table exists (tables.get)."""
    try:
        _call(base, _path(uri))
    except BigQueryError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def dataset_exists(base: str, uri: str) -> bool:
    """Whether the table's dataset exists (datasets.get)."""
    try:
        _call(base, _path(uri).rsplit("/tables/", 1)[0])
    except BigQueryError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def row_count(base: str, uri: str) -> int:
    """The table's rows as tables.get reports them (`numRows`)."""
    found = _call(base, _path(uri))
    return int(found.get("numRows") or 0)


def create_table(base: str, uri: str, columns: list[dict[str, Any]]) -> None:
    """Create the destination table with `columns` (tables.insert); its dataset must exist.

    Raises:
        BigQueryError: the table exists (409), as Vertex refuses to write one that does.
    """
    project, dataset, table = split_table(uri)
    body = {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "schema": {"fields": columns},
    }
    if table_exists(base, uri):
        raise BigQueryError(409, f"Already Exists: Table {project}:{dataset}.{table}")
    path = _path(uri).rsplit("/", 1)[0]
    _call(base, path, body)


def append(base: str, uri: str, batch: list[dict[str, Any]], kinds: dict[str, str]) -> None:
    """Append rows (tabledata.insertAll); JSON columns are sent as JSON text, as BigQuery's
    REST API takes them."""
    if not batch:
        return
    encoded = [
        {
            "json": {
                name: json.dumps(value)
                if kinds.get(name) == "JSON" and value is not None
                else value
                for name, value in row.items()
            }
        }
        for row in batch
    ]
    answer = _call(base, f"{_path(uri)}/insertAll", {"rows": encoded})
    errors = answer.get("insertErrors") or []
    if errors:
        raise BigQueryError(400, f"BigQuery refused {len(errors)} row(s): {errors[0]}")


def column_for(name: str, value: Any) -> dict[str, Any]:
    """A column for a passed-through JSONL field (a gs:// source written to a table)."""
    kind = "JSON" if isinstance(value, (dict, list)) or name == "request" else "STRING"
    return {"name": name, "type": kind, "mode": "NULLABLE"}
