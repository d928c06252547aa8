"""The results viewer over a results file anyone could have edited: every hostile line is shown
(or said to be unreadable) on a 200 page, never a 500 or a traceback, and the query string
cannot make it read or index anything else."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from reconciler.plan.cost import default_price_table
from reconciler.ui.app import UiSources, create_app
from reconciler.ui.server import running_ui
from reconciler.ui.views import Snapshot
from tests.unit.plan.factories import attempt, desired, live, record, resource, results, state

pytestmark = pytest.mark.hostile_input

HOSTILE_LINES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"key": "deep", "response": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"key": ' + b"9" * 5_000 + b"}",
    b'{"key": "k", "response": {"candidates": "not a list"}}',
    b'{"key": ["a"], "error": {"code": "x", "message": 7}}',
    b"\xff\xfe\x00not utf-8",
    b'{"key": "<script>alert(1)</script>", "response": {"candidates": [{"content": '
    b'{"parts": [{"text": "<img src=x onerror=alert(1)>"}]}}]}}',
    b'{"key": "img", "response": {"candidates": [{"content": {"parts": [{"inlineData": '
    b'{"mimeType": "image/png", "data": "!!!not base64"}}]}}]}}',
    b"null",
    b"",
    b"x" * (2 << 20),
]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def test_hostile_results_lines_are_pages_not_tracebacks(tmp_path: Path) -> None:
    res = resource("eval")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "eval.jsonl").write_bytes(b"\n".join(HOSTILE_LINES) + b"\n")
    snapshot = Snapshot(
        desired(res),
        state(record(res, attempt(res), results=results(res))),
        live(),
        None,
        default_price_table(),
    )
    app = create_app(UiSources(tmp_path, "p", lambda with_live: snapshot))
    queries = [
        "",
        "?page=1",
        "?page=99999999999999999999",
        "?page=-5&start=-1",
        "?q=" + urllib.parse.quote("x" * 10_000),
        "?q=%ff%fe",
        "?failures=1",
        "?q=deep&start=" + "9" * 5_000,
    ]
    with running_ui(app) as url:
        for query in queries:
            status, body = _get(f"{url}/resources/eval/results{query}")
            assert status == 200, (query, body[-300:])
            assert "Traceback" not in body
            assert "<script>alert(1)" not in body and "<img src=x" not in body
        for path in ("..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"):
            status, _ = _get(f"{url}/resources/eval/files/{path}")
            assert status == 404, path
        status, body = _get(f"{url}/resources/eval/diff?key=%ff&a=" + "9" * 5_000)
        assert status == 404 and "Traceback" not in body
