"""Browser fixtures: this repository's demo project applied against an emulator in a temporary
copy, `reconciler ui` serving it from a real subprocess, and Debian's headless chromium driven
through its own chromedriver (selenium, pointed at /usr/bin/chromedriver, so nothing is
downloaded: selenium-manager never runs).

Why selenium rather than Playwright: Debian ships chromium and a chromedriver built from the same
source, so the driver always matches the browser; Playwright's Python package bundles a Node
driver tied to its own browser builds, which this project cannot download.

Without chromium the browser tests skip and say how to install it -- except under `CI=true`,
where a missing browser fails them (CI installs it with scripts/setup.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import running_emulator
from tests.e2e.conftest import git

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
API_KEY = "AIzaSy-browser-suite-key-7d2e"
"""Handed to the UI process as GEMINI_API_KEY: no page may show it."""
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
FAILING = "doc-embeddings"
"""The resource whose every request fails (the emulator's per-request error switch)."""
CHANGED_KEY = "eval-002"
"""The request whose prompt the second apply changes, so attempts 1 and 2 answer it differently."""


BILLED_ELSEWHERE = "eval-summaries"
BILLED_MODEL = "gemini-2.5-flash"
"""Attempt 1 of `BILLED_ELSEWHERE` was billed on this model, though its manifest names another."""


def _env(endpoint: str) -> dict[str, str]:
    """The CLI's environment: the emulator as the endpoint, trusted with the key (as a user
    trusts a local endpoint from outside the repository), so the key travels and can leak."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        {
            "RECONCILER_ENDPOINT": endpoint,
            "RECONCILER_TRUST_ENDPOINT": endpoint,
            "NO_COLOR": "1",
            "GEMINI_API_KEY": API_KEY,
        }
    )
    return env


def _cli(root: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(endpoint)
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result


def _with_costs(state_file: Path) -> None:
    """Give every collected attempt a cost and a collection time, spread over three days.

    The cost fields are the state's own (format 4); filling them here stands in for a project
    whose collects priced their results, so the chart has points to draw.
    """
    state = json.loads(state_file.read_text())
    base = datetime(2026, 11, 28, 9, 0, 0)
    step = 0
    for name in sorted(state["resources"]):
        for attempt in state["resources"][name]["attempts"]:
            if attempt["state"] != "SUCCEEDED":
                continue
            step += 1
            attempt["usage"] = {"prompt": 1000 * step, "output": 400 * step, "responses": 4}
            if name == BILLED_ELSEWHERE and attempt["number"] == 1:
                # Billed on the model the manifest named then: spend stays under that model.
                attempt["usage"]["model"] = BILLED_MODEL
            attempt["cost_usd"] = round(0.05 * step, 6)
            attempt["collected_at"] = (base + timedelta(hours=11 * step)).isoformat() + "Z"
    state_file.write_text(json.dumps(state, indent=2, sort_keys=True))


@dataclass(frozen=True)
class Demo:
    root: Path
    url: str

    def get(self, path: str, **headers: str) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "state" / "reconciler.state.json").read_text())


def _address(process: subprocess.Popen[str]) -> str:
    """The address `reconciler ui --port 0` says it serves at (its first line on stderr)."""
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.search(r"at (http://\S+?)/? ", line)
    if found is None:
        raise RuntimeError(f"reconciler ui did not say where it serves: {line!r}")
    return found.group(1).rstrip("/")


def _wait_listening(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"reconciler ui exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            with urllib.request.urlopen(url + "/static/app.css", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("reconciler ui did not start listening within 30 s")


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo project (manifests/ and data/ of this repository), applied as is (every request
    of `FAILING` ending in an error, every other one answered), then again with one prompt
    changed, so eval-summaries has two attempts with results. Its state is given costs;
    `reconciler ui` serves it."""
    base = tmp_path_factory.mktemp("ui-demo")
    root = base / "repo"
    root.mkdir()
    for folder in ("manifests", "data"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "reconciler.yaml").write_text(
        "manifests: manifests\nstate: state/reconciler.state.json\n"
        "poll:\n  initial_seconds: 0.2\n  max_seconds: 0.5\n"
    )
    git(root, "init", "-q", "-b", "main")
    with running_emulator(base / "emulator", job_seconds=0.3, request_error_rate=1.0) as emu:
        # Every embedding request fails (for the failure filter); the rest all succeed.
        _cli(root, emu.base_url, "apply", "--auto-approve", "--wait", "--target", FAILING)
        emu.configure(request_error_rate=0.0)
        _cli(root, emu.base_url, "apply", "--auto-approve", "--wait")
        inputs = root / "data" / "eval-summaries.jsonl"
        lines = [json.loads(line) for line in inputs.read_text().splitlines()]
        for line in lines:
            if line["key"] == CHANGED_KEY:
                line["request"]["contents"][0]["parts"][0]["text"] += " Mention the weather."
        inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
        _cli(root, emu.base_url, "apply", "--auto-approve", "--wait")
        _with_costs(root / "state" / "reconciler.state.json")
        with serving(root, emu.base_url) as demo:
            yield demo


@contextlib.contextmanager
def serving(root: Path, endpoint: str) -> Iterator[Demo]:
    """`reconciler ui --port 0` on the project at `root`, reading the service at `endpoint`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "-C", str(root), "ui", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(endpoint),
        stdin=subprocess.DEVNULL,
    )
    try:
        url = _address(process)
        _wait_listening(url, process)
        yield Demo(root, url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _missing_browser() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return (
            f"{' and '.join(missing)} not installed: run scripts/setup.sh as root "
            "(apt-get install -y chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: run `make setup`"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium through chromedriver, with a fresh profile directory."""
    missing = _missing_browser()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests need chromium under CI: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ui-browser-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """Save the current page as test-artifacts/screenshots/<name>.png (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
