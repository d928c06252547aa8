"""Run google-genai's own `tests/batches` and `tests/files` (from its installed wheel) against
an emulator, and say per test whether it reached the server and how it ended.

    .venv/bin/python -m tests.sdk_suite.runner      # starts an emulator, prints the report

The SDK's tests run in their own pytest process, in its "api" mode (every call goes to the
server, nothing is recorded), with a fake key, Gemini Developer API variants only (their Vertex
variants skip themselves), from the wheel in site-packages: only the data files the wheel does
not ship live here (`data/`, from the SDK's repository, Apache-2.0: see `data/NOTICE`), and the
two media files whose content no test reads are generated. `plugin.py` does the rest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import google.genai

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
SDK_TESTS = Path(google.genai.__file__).resolve().parent / "tests"
SUITES = ("batches", "files")

_TINY_MEDIA = {
    # ISO base media files of one `ftyp` box: the upload tests check only the name they get back.
    "animal.mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    "pixel.m4a": b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom",
}

_PAGER_HEADERS = {
    "batches/test_list.py::test_async_pager": (
        "asserts the header spelling aiohttp keeps (`'Content-Type'` in `sdk_http_response."
        "headers`); aiohttp (google-genai's `aiohttp` extra) is not installed, and through httpx2 "
        "the SDK lower-cases every name whatever the server sends"
    ),
    "files/test_list.py::test_async_pager": "the same as batches/test_list.py::test_async_pager",
}
"""Failing only without aiohttp (with it, as when the `litellm` extra brings it, they pass:
the emulator spells `Content-Type` as the service does)."""
EXCEPTIONS: dict[str, str] = {
    **({} if importlib.util.find_spec("aiohttp") else _PAGER_HEADERS),
    "files/test_download.py::test_name_transform_name": (
        "the emulator's `downloadUri` is its own `http://127.0.0.1:PORT/download/v1beta/...` "
        "URL, so that it can be fetched; the SDK's `t_file_name` parses only `https://` URIs"
    ),
    "files/test_register_table.py::test_register": (
        "`files:register` needs OAuth credentials (Application Default Credentials): the "
        "service, and the emulator, answer 401 to an API key alone"
    ),
    "files/test_register_table.py::test_async": "the same as test_register_table.py::test_register",
    "files/test_register.py::test_async_single": (
        "never reaches a server (the transport is mocked); fails the same way under plain "
        "asyncio with no server: the autospec mock of `_async_request_once` hands the SDK's "
        "retry wrapper an un-awaited coroutine"
    ),
    "files/test_register.py::test_async_token_refresh": "as test_register.py::test_async_single",
    "files/test_register.py::test_async_quota_project": "as test_register.py::test_async_single",
    "files/test_register.py::test_async_multiple_uris": "as test_register.py::test_async_single",
}
"""Tests of the suite that fail here, by `suite/module::function`, each with why."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one test of the SDK's suite ended."""

    test: str
    """pytest's node id."""
    outcome: str
    """passed | failed | skipped"""
    calls: int
    """API calls the emulator counted while it ran."""
    message: str
    """The failure or skip reason, one line."""

    @property
    def reached(self) -> bool:
        return self.calls > 0

    @property
    def key(self) -> str:
        """`batches/test_list.py::test_async_pager`: the node id below the SDK's tests
        directory, without its parameters."""
        return self.test.split("genai/tests/")[-1].split("[")[0]


def _prepare(workdir: Path) -> Path:
    """`workdir/tests/data`: the vendored files and the generated media (the upload tests open
    `tests/data/...` relative to the working directory)."""
    data = workdir / "tests" / "data"
    data.mkdir(parents=True, exist_ok=True)
    for path in DATA.iterdir():
        if path.suffix in (".png", ".jpg", ".pdf"):
            shutil.copyfile(path, data / path.name)
    for name, content in _TINY_MEDIA.items():
        (data / name).write_bytes(content)
    (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return data


def run_suite(base_url: str, workdir: Path, *, timeout: float = 1200) -> list[Outcome]:
    """Run the suites against the emulator at `base_url` (its admin API on); one Outcome per
    test, in run order. `workdir` receives the data files, replays directory and report."""
    data = _prepare(workdir)
    report = workdir / "report.jsonl"
    report.unlink(missing_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "GOOGLE_", "GEMINI_", "RECONCILER_"))
    }
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "GOOGLE_API_KEY": "sdk-suite-fake-key",
            "GOOGLE_GEMINI_BASE_URL": base_url,
            "GOOGLE_GENAI_REPLAYS_DIRECTORY": str(workdir / "replays"),
            "GOOGLE_GENAI_RUN_GEMINI_ONLY_IN_API_MODE": "1",
            "RECONCILER_SDK_SUITE_DATA": str(data),
            "RECONCILER_SDK_SUITE_REPORT": str(report),
        }
    )
    site_packages = SDK_TESTS.parents[2]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(workdir / "pytest.ini"),
        "--rootdir",
        str(site_packages),
        "-p",
        "tests.sdk_suite.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        # bqemulator's pytest plugin imports testcontainers, which is not installed; the
        # project's own addopts leave it out the same way
        "-p",
        "no:bqemulator",
        "-q",
        "-W",
        "ignore",
        "--mode",
        "api",
        *(str(SDK_TESTS / suite) for suite in SUITES),
    ]
    subprocess.run(command, cwd=workdir, env=env, capture_output=True, timeout=timeout, check=False)
    if not report.exists():
        return []
    lines = report.read_text(encoding="utf-8").splitlines()
    return [Outcome(**json.loads(line)) for line in lines if line.strip()]


def summary(outcomes: list[Outcome]) -> str:
    """The report as Markdown: counts, then every failure with its listed reason."""
    ran = [o for o in outcomes if o.outcome != "skipped"]
    reached = [o for o in ran if o.reached]
    lines = [
        f"google-genai {google.genai.__version__}: {len(outcomes)} tests collected, "
        f"{len(outcomes) - len(ran)} skipped (Vertex variants), {len(ran)} run, "
        f"{sum(o.outcome == 'passed' for o in ran)} passed; "
        f"{len(reached)} reached the server, {sum(o.outcome == 'passed' for o in reached)} "
        "of them passed.",
        "",
        "| test | reached the server | why it fails here |",
        "|---|---|---|",
    ]
    for o in ran:
        if o.outcome == "failed":
            why = EXCEPTIONS.get(o.key, f"NOT LISTED: {o.message}")
            lines.append(f"| `{o.key}` | {'yes' if o.reached else 'no'} | {why} |")
    return "\n".join(lines)


def main() -> None:
    from reconciler.emulator import running_emulator

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with running_emulator(root / "emulator", job_seconds=0) as emulator:
            outcomes = run_suite(emulator.base_url, root / "work")
    print(summary(outcomes))


if __name__ == "__main__":
    main()
