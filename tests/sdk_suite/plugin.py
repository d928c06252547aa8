"""A pytest plugin for running google-genai's own tests (from its installed wheel) against the
emulator: what those tests need that this environment does not give them, and a per-test
record of whether each one reached the server.

Loaded only by `tests/sdk_suite/runner.py` in its own pytest process (`-p
tests.sdk_suite.plugin`); never by the repository's test run.

- `pytest.mark.asyncio` tests run in a fresh event loop (the SDK's suite uses pytest-asyncio's
  marker; its tests need nothing else from that plugin, so it is not a dependency here: an
  empty module stands in for it where a test module names it in `pytest_plugins`).
- `httpx`: google-genai 3.x sends through `httpx2`, and its changelog says `import httpx2 as
  httpx` is enough for code written against httpx; two of its test modules still import `httpx`.
- `../data/<file>` next to the installed tests (read at import by
  `batches/test_create_with_inlined_requests.py`): the wheel ships no data files, so opens of
  that directory are answered from `RECONCILER_SDK_SUITE_DATA`.
- The base URL: the suite's client fixture ignores `GOOGLE_GEMINI_BASE_URL`, so its
  `ReplayApiClient` gets the emulator's URL in `http_options` (unless a test sets one).
- Per test, the emulator's call counters (`/_emulator/calls`) are reset before and read after,
  and `RECONCILER_SDK_SUITE_REPORT` receives one JSON line per test: node id, outcome, whether
  it reached the server, and the first line of the failure.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import importlib
import importlib.abc
import inspect
import json
import os
import sys
from collections.abc import Generator
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from google.genai import _replay_api_client
from google.genai import types as genai_types


class _GenaiAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`genai.X` is `google.genai.X`, the same module object.

    pytest imports the installed tests by path, and `google` is a namespace package, so it
    names them `genai.tests.…`; without this their relative imports would load a second copy of
    the SDK beside the first, and a test that patches one copy would miss calls made by the other.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name != "genai" and not name.startswith("genai."):
            return None
        return ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module("google." + spec.name)

    def exec_module(self, module: ModuleType) -> None:
        """Already executed under its own name."""


sys.meta_path.insert(0, _GenaiAlias())
sys.modules.setdefault("httpx", httpx2)
# `files/test_download.py` names pytest-asyncio in `pytest_plugins`; the marker is served here.
sys.modules.setdefault("pytest_asyncio", ModuleType("pytest_asyncio"))

_DATA = Path(os.environ.get("RECONCILER_SDK_SUITE_DATA", "tests/data")).resolve()
_REPORT = os.environ.get("RECONCILER_SDK_SUITE_REPORT")
_BASE_URL = os.environ.get("GOOGLE_GEMINI_BASE_URL", "")
_SDK_DATA = os.sep.join(("google", "genai", "tests", "data")) + os.sep
_real_open = builtins.open


def _open(file: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(file, (str, os.PathLike)):
        text = os.fspath(file)
        if isinstance(text, str) and _SDK_DATA in os.path.normpath(text):
            file = _DATA / os.path.basename(text)
    return _real_open(file, *args, **kwargs)


builtins.open = _open


def _with_base_url(http_options: Any) -> Any:
    """`http_options` with the emulator's base URL in place of the service's (Google's hosts,
    the sandbox a few tests name included); anything else a test sets is kept."""
    if http_options is None:
        return genai_types.HttpOptions(base_url=_BASE_URL)
    if isinstance(http_options, dict):
        return {**http_options, "base_url": _emulated(http_options.get("base_url"))}
    return http_options.model_copy(update={"base_url": _emulated(http_options.base_url)})


def _emulated(base_url: str | None) -> str:
    host = urlsplit(base_url or "").hostname or ""
    return _BASE_URL if not base_url or host.endswith("googleapis.com") else base_url


# The suite's `client` fixture builds a ReplayApiClient directly, which (unlike `genai.Client`)
# does not read GOOGLE_GEMINI_BASE_URL: hand it the emulator's URL the way a user would.
_replay_init: Any = _replay_api_client.ReplayApiClient.__init__


def _replay_client_init(self: Any, *args: Any, http_options: Any = None, **kwargs: Any) -> None:
    _replay_init(self, *args, http_options=_with_base_url(http_options), **kwargs)


_replay_api_client.ReplayApiClient.__init__ = _replay_client_init  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: run the coroutine test in an event loop")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


def _calls() -> int:
    try:
        answer = httpx2.get(f"{_BASE_URL}/_emulator/calls", timeout=10)
        counts = answer.json()
    except (httpx2.HTTPError, ValueError):
        return 0
    values = counts.values() if isinstance(counts, dict) else ()
    return sum(v for v in values if isinstance(v, int))


_GENERATE_LINE = {"key": "1", "request": {"contents": [{"parts": [{"text": "Hello"}]}]}}
_EMBED_LINE = {"key": "1", "request": {"content": {"parts": [{"text": "1"}]}}}
_EMBED_INLINE = [
    {"request": {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}}
    for t in "123"
]
_GENERATE_INLINE = [{"request": _GENERATE_LINE["request"]}]
_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
"""The smallest ISO media file: the download tests check only the `ftyp` box at bytes 4..8."""

_FILE = {"mimeType": "text/plain"}
_GENERATE_BATCH = {
    "model": "models/gemini-2.5-flash",
    "inputConfig": {"requests": {"requests": _GENERATE_INLINE}},
}
_EMBED_BATCH = {"model": "models/gemini-embedding-001", "method": "asyncBatchEmbedContent"}
_INPUT = {
    "files/s0pa54alni6w": json.dumps(_GENERATE_LINE) + "\n",
    "files/mq9e3mg3u2y5": json.dumps(_EMBED_LINE) + "\n",
}

SEEDS: dict[str, dict[str, list[dict[str, Any]]]] = {
    # Per test module, the resources it names by the ids it recorded against the real service;
    # created before each of its tests (one that exists answers 409 and is kept).
    "batches/test_cancel.py": {
        "batches": [{"name": "batches/0yew7plxupyybd7appsrq5vw7w0lp3l79lab", **_GENERATE_BATCH}]
    },
    "batches/test_delete.py": {
        "batches": [{"name": "batches/70h2jo0ic2t1zejyl0p4jgi8mk1gj0wvjusv", **_GENERATE_BATCH}]
    },
    "batches/test_get.py": {
        "batches": [{"name": "batches/z2p8ksus4lyxt25rntl3fpd67p2niw4hfij5", **_GENERATE_BATCH}]
    },
    "batches/test_create_with_file.py": {
        "files": [
            {
                "name": "files/s0pa54alni6w",
                "content": _INPUT["files/s0pa54alni6w"],
                "mimeType": "application/jsonl",
            }
        ]
    },
    "batches/test_embedding.py": {
        "files": [
            {
                "name": "files/mq9e3mg3u2y5",
                "content": _INPUT["files/mq9e3mg3u2y5"],
                "mimeType": "application/jsonl",
            }
        ],
        "batches": [
            {
                "name": "batches/wdx71o8cgbzoa6gg3be1mg7g8ulrhapcjgo3",
                **_EMBED_BATCH,
                "inputConfig": {"requests": {"requests": _EMBED_INLINE}},
            },
            {
                "name": "batches/507oatd242het8ox60pwsmn7tcmtkrj8itff",
                **_EMBED_BATCH,
                "inputConfig": {"fileName": "files/mq9e3mg3u2y5"},
            },
        ],
    },
    "files/test_get.py": {"files": [{"name": "files/vjvu9fwk2qj8", "content": "get", **_FILE}]},
    "files/test_delete.py": {
        "files": [
            {"name": "files/1g583ke2xdsn", "content": "delete", **_FILE},
            {"name": "files/n1gls7dyh90q", "content": "get", **_FILE},
        ]
    },
}


def seed_resources(module: str) -> None:
    """Create the resources test `module` (`batches/test_get.py`) names, where missing."""
    for kind, specs in SEEDS.get(module, {}).items():
        for spec in specs:
            httpx2.post(f"{_BASE_URL}/_emulator/resources", json={kind: [spec]}, timeout=10)


def _seed_video(item: pytest.Item) -> None:
    """A fresh generated video, newest of all files, for the download tests: they download
    the first downloadable file the list shows (else they would ask Veo for one)."""
    video_id = "video" + hashlib.sha256(item.nodeid.encode()).hexdigest()[:16]
    httpx2.delete(f"{_BASE_URL}/v1beta/files/{video_id}", timeout=10)
    spec = {
        "name": f"files/{video_id}",
        "contentBase64": base64.b64encode(_MP4).decode(),
        "mimeType": "video/mp4",
        "source": "GENERATED",
    }
    httpx2.post(f"{_BASE_URL}/_emulator/resources", json={"files": [spec]}, timeout=10)


_OUTCOMES = pytest.StashKey[list[tuple[str, str]]]()
"""Per test, (outcome, message) of each phase that failed or skipped."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    module = "/".join(item.nodeid.split("::")[0].split("/")[-2:])
    if "[True-" not in item.nodeid:  # Vertex variants skip before reaching any server
        seed_resources(module)
        if module == "files/test_download.py":
            _seed_video(item)
    httpx2.post(f"{_BASE_URL}/_emulator/calls/reset", json={}, timeout=10)
    item.stash[_OUTCOMES] = []
    yield
    if not _REPORT:
        return
    outcomes: list[tuple[str, str]] = item.stash[_OUTCOMES]
    failed = [(w, m) for w, m in outcomes if w == "failed"]
    skipped = [(w, m) for w, m in outcomes if w == "skipped"]
    outcome = "failed" if failed else "skipped" if skipped else "passed"
    message = (failed or skipped or [("", "")])[0][1]
    line = {"test": item.nodeid, "outcome": outcome, "calls": _calls(), "message": message}
    with _real_open(_REPORT, "a", encoding="utf-8") as report:
        report.write(json.dumps(line) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed or report.skipped:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = str(getattr(crash, "message", "") or report.longreprtext.strip()[-300:])
        if report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        item.stash[_OUTCOMES].append((report.outcome, message.splitlines()[0][:300]))
    return report
