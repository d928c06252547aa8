"""BigQuery for Vertex jobs: a source table's metadata, and a results table's rows read back.

Plain BigQuery REST (v2) over `requests`, which google-auth already brings: `tables.get` for
change detection (manifests/remote.py digests what it answers) and `tabledata.list`, paged,
to stream a results table, and `check_source` / `check_output` for `doctor` (tables.get,
datasets.get). Google's host gets Application Default Credentials through
google-auth's `AuthorizedSession`; an emulator (`VertexTarget.bigquery_url`) gets no
credentials at all. The calls are synchronous: the adapter runs them in worker threads.

Rows come back as result lines the rest of the tool already reads (`key`, then `response` or
`error`), from the columns Vertex writes: `response` (JSON), `status` (the error message of a
failed request, empty when it succeeded) and the source's own columns, of which a `key`
column, when present, names the request.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from reconciler.errors import (
    ConfigError,
    PermanentServiceError,
    ServiceError,
    TransientServiceError,
)
from reconciler.live import vertex_convert
from reconciler.live.snapshot import LiveFile
from reconciler.manifests.bigquery_uri import TableRef, parse_table
from reconciler.manifests.remote import RemoteTable

GOOGLE_URL: Final = "https://bigquery.googleapis.com"
EMULATOR_VARIABLE: Final = "BIGQUERY_EMULATOR_HOST"
_SCOPE: Final = "https://www.googleapis.com/auth/bigquery.readonly"
_TIMEOUT: Final = 60.0
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})


class BigQueryError(Exception):
    """A BigQuery call failed; `code` is the HTTP status (None: unreachable)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class BigQuery:
    """One HTTP session to BigQuery's REST API, made on first use.

    `beside_emulator`: Vertex itself is an emulator. Google's BigQuery is then never used
    (an emulated job could not read or write it anyway): without an endpoint of its own,
    the first call raises a ConfigError naming `vertex.bigquery_url`.
    """

    def __init__(self, endpoint: str | None, *, beside_emulator: bool = False) -> None:
        self._endpoint = (endpoint or GOOGLE_URL).rstrip("/")
        self._emulated = endpoint is not None
        self._unset = endpoint is None and beside_emulator
        self._session: Any = None

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """The JSON answer of GET `path`, or None on 404."""
        import requests

        if self._unset:
            raise ConfigError(
                "BigQuery tables with an emulated Vertex need a BigQuery emulator: set "
                f"`vertex.bigquery_url` (or {EMULATOR_VARIABLE})",
                hint="e.g. a bqemulator started with `bqemulator start`",
            )
        if self._session is None:
            if self._emulated:
                self._session = requests.Session()
            else:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(scopes=[_SCOPE])
                self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        url = f"{self._endpoint}/bigquery/v2/{path}"
        try:
            answer = self._session.get(url, params=params, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            raise BigQueryError(f"BigQuery is unreachable: {type(exc).__name__}", None) from None
        if answer.status_code == 404:
            return None
        if answer.status_code >= 400:
            raise BigQueryError(
                f"BigQuery answered {answer.status_code}: {_message(answer)}", answer.status_code
            )
        body: dict[str, Any] = answer.json()
        return body

    def table(self, uri: str) -> RemoteTable | None:
        """The table's metadata (tables.get), or None when it does not exist."""
        ref = parse_table(uri)
        found = self._get(_table_path(ref))
        if found is None:
            return None
        return RemoteTable(
            uri=uri,
            last_modified=_text(found.get("lastModifiedTime")),
            num_rows=_number(found.get("numRows")),
            num_bytes=_number(found.get("numBytes")),
            etag=_text(found.get("etag")),
        )

    def rows(self, uri: str, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row of the table as {column: value}, one page in memory at a time.

        Raises:
            BigQueryError: the table does not exist (404) or a call failed.
        """
        ref = parse_table(uri)
        found = self._get(_table_path(ref))
        if found is None:
            raise BigQueryError(f"{uri} does not exist", 404)
        fields = [(f.get("name", ""), f.get("type", "")) for f in found["schema"]["fields"]]
        token: str | None = None
        while True:
            params = {"maxResults": str(page_size)}
            if token:
                params["pageToken"] = token
            page = self._get(f"{_table_path(ref)}/data", params) or {}
            for row in page.get("rows") or ():
                cells = row.get("f") or ()
                yield {
                    name: _cell(kind, cell.get("v"))
                    for (name, kind), cell in zip(fields, cells, strict=False)
                }
            token = page.get("pageToken")
            if not token or not page.get("rows"):
                return

    def check_source(self, uri: str) -> TableCheck:
        """Whether the credentials reconciler runs with can read the source table `uri`."""
        ref = parse_table(uri)
        found, problem = self._probe(_table_path(ref))
        if problem is not None:
            return TableCheck("source", uri, problem, _READ_HINT)
        if found is None:
            return TableCheck(
                "source", uri, Access.MISSING, "create it (a `request` JSON column) first"
            )
        rows = _number(found.get("numRows"))
        return TableCheck("source", uri, Access.OK, f"readable ({rows or 0:,} rows)")

    def check_output(self, uri: str) -> TableCheck:
        """Whether the output table's dataset exists and can be seen, and whether the table
        does (a job creates it; Vertex refuses one that exists)."""
        ref = parse_table(uri)
        dataset = f"{ref.project}.{ref.dataset}"
        found, problem = self._probe(f"projects/{ref.project}/datasets/{ref.dataset}")
        if problem is not None:
            return TableCheck("output", uri, problem, f"dataset {dataset}: {_WRITE_HINT}")
        if found is None:
            return TableCheck(
                "output",
                uri,
                Access.MISSING,
                f"dataset {dataset} does not exist: create it (`bq mk --dataset "
                f"{ref.project}:{ref.dataset}`) in the jobs' region",
            )
        table, problem = self._probe(_table_path(ref))
        if problem is not None:
            return TableCheck("output", uri, problem, _WRITE_HINT)
        if table is None:
            return TableCheck(
                "output", uri, Access.OK, f"dataset {dataset} exists; the job creates the table"
            )
        return TableCheck(
            "output",
            uri,
            Access.OK,
            f"dataset {dataset} exists, and so does the table: an earlier job's results, or "
            "in the way of a new job (Vertex writes only new tables; `plan` refuses one)",
        )

    def _probe(self, path: str) -> tuple[dict[str, Any] | None, Access | None]:
        """GET `path`: (its answer or None when it does not exist, None) or (None, why not)."""
        try:
            return self._get(path), None
        except BigQueryError as exc:
            return None, Access.DENIED if exc.code == 403 else Access.FAILED


class Access(enum.StrEnum):
    """What a BigQuery check found."""

    OK = "ok"
    MISSING = "not found"
    DENIED = "permission denied"
    FAILED = "unreachable or refused"


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One line of `doctor`: a source table or an output table (with its dataset)."""

    role: str
    """`source` or `output`."""
    uri: str
    access: Access
    detail: str

    @property
    def ok(self) -> bool:
        return self.access is Access.OK


_READ_HINT: Final = (
    "grant the credentials reconciler runs with (Application Default Credentials) BigQuery "
    "Data Viewer on the table, and Vertex AI's service agent too"
)
_WRITE_HINT: Final = (
    "grant the credentials reconciler runs with (Application Default Credentials) and Vertex "
    "AI's service agent BigQuery Data Editor on the dataset"
)


def result_line(row: dict[str, Any], number: int) -> dict[str, Any]:
    """A result line (`key` + `response` or `error`) for one results-table row, as for a line
    of a predictions file; `number` counts from 1 and stands in for a missing `key` column.
    A table's `key` column may hold any type: it becomes text."""
    key = row.get("key")
    return vertex_convert.result_line(
        {**row, "key": str(key) if key not in (None, "") else None}, number
    )


def service_error(exc: BigQueryError, call: str) -> ServiceError:
    """A BigQuery failure as the adapter's errors: busy or unreachable is transient."""
    if exc.code is None or exc.code in _TRANSIENT:
        return TransientServiceError(str(exc), call=call, status_code=exc.code)
    return PermanentServiceError(str(exc), call=call, status_code=exc.code)


def table_file(table: RemoteTable) -> LiveFile:
    """A results table as the `LiveFile` a job's output is looked up as (it never expires)."""
    return LiveFile(
        name=table.uri,
        display_name=table.uri,
        size_bytes=table.num_bytes or 0,
        sha256_b64=None,
        state="ACTIVE",
        expiration_time=None,
        source="GENERATED",
        uri=table.uri,
        create_time=None,
    )


def write_result_lines(rows: Iterable[dict[str, Any]], dest: Path) -> tuple[str, int]:
    """Results-table rows as result lines in `dest`; (sha256 hex, bytes) of what was written."""
    sha = hashlib.sha256()
    size = 0
    with dest.open("wb") as sink:
        for number, row in enumerate(rows, 1):
            line = result_line(row, number)
            data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            sink.write(data)
            sha.update(data)
            size += len(data)
    return sha.hexdigest(), size


def copy_to_stream(
    endpoint: str | None, uri: str, sink: IO[bytes], *, beside_emulator: bool = False
) -> int:
    """Stream a results table to `sink` as result lines, a page at a time; the rows written.

    Raises:
        BigQueryError: the table does not exist (404) or a call failed.
    """
    count = 0
    table = BigQuery(endpoint, beside_emulator=beside_emulator)
    for count, row in enumerate(table.rows(uri), 1):
        line = result_line(row, count)
        sink.write((json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
    return count


def _table_path(ref: TableRef) -> str:
    return f"projects/{ref.project}/datasets/{ref.dataset}/tables/{ref.table}"


def _cell(kind: str, value: Any) -> Any:
    """A tabledata value in Python: JSON columns parsed (BigQuery sends them as strings)."""
    if kind == "JSON" and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _message(answer: Any) -> str:
    try:
        return str(answer.json()["error"]["message"]).splitlines()[0][:300]
    except (ValueError, KeyError, TypeError, IndexError):
        return answer.reason or "error"
