"""The web view while jobs run and when the service cannot be read: request counts come from
the service's `batchStats`, the page says when the service is unreachable and still shows what
the state knows, and what the view keeps under `.reconciler/` is pruned when it is stale.

A project of its own (one resource of twelve requests whose job runs for minutes), served by
`reconciler ui` in a subprocess; screenshots as the other browser tests keep them.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from reconciler.emulator import EmulatorHandle, running_emulator
from reconciler.ui.files import output_path
from reconciler.ui.lineindex import INDEX_DIR
from tests.browser.conftest import _cli, screenshot, serving
from tests.e2e.conftest import git

REQUESTS = 12


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, EmulatorHandle]]:
    """A project whose one job was created and is still running at the emulator."""
    base = tmp_path_factory.mktemp("ui-running")
    root = base / "repo"
    (root / "manifests").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "reconciler.yaml").write_text(
        "manifests: manifests\nstate: state/reconciler.state.json\n"
    )
    lines = [
        {"key": f"q{i:02}", "request": {"contents": [{"parts": [{"text": f"question {i}"}]}]}}
        for i in range(REQUESTS)
    ]
    (root / "data" / "questions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / "manifests" / "questions.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: questions\nspec:\n"
        "  model: gemini-2.5-flash\n  source:\n    file: data/questions.jsonl\n"
        "  output: results/questions.jsonl\n"
    )
    git(root, "init", "-q", "-b", "main")
    with running_emulator(base / "emulator", job_seconds=900) as emulator:
        _cli(root, emulator.base_url, "apply", "--auto-approve", "--no-wait")
        yield root, emulator


def test_a_running_job_shows_the_service_request_counts(
    running: tuple[Path, EmulatorHandle], browser: Any
) -> None:
    root, emulator = running
    with serving(root, emulator.base_url) as view:
        browser.get(view.url + "/")
        row = browser.find_element(By.CSS_SELECTOR, "table.overview tbody tr")
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert cells[0] == "questions"
        assert cells[1] in ("running", "pending")
        assert re.fullmatch(rf"\d+ / {REQUESTS} done", cells[3]), cells[3]
        screenshot(browser, "overview-running")


def test_with_the_service_unreachable_the_overview_says_so_and_shows_the_state(
    running: tuple[Path, EmulatorHandle], browser: Any
) -> None:
    root, _ = running
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serving(root, closed) as view:
        browser.get(view.url + "/")
        main = browser.find_element(By.TAG_NAME, "main").text
        assert "The service could not be read" in main
        assert "cannot reach 127.0.0.1: connection refused" in main
        row = browser.find_element(By.CSS_SELECTOR, "table.overview tbody tr")
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert cells[0] == "questions"
        assert cells[1] in ("running", "pending"), "the state's last word on its job"
        assert cells[3] == f"{REQUESTS} sent"
        screenshot(browser, "overview-service-unreachable")
        status, body = view.get("/resources/questions")
        assert status == 200 and "The service could not be read" in body


def test_stale_indexes_and_outputs_are_pruned_when_the_view_reads_the_state(
    running: tuple[Path, EmulatorHandle],
) -> None:
    root, emulator = running
    forgotten = output_path(root, "batches/not-in-the-state")
    forgotten.parent.mkdir(parents=True, exist_ok=True)
    forgotten.write_text("{}\n")
    orphan = root / INDEX_DIR / f"{'0' * 64}.lines"  # the index of a file long gone
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"rc-lines-1\n")
    with serving(root, emulator.base_url) as view:
        status, _ = view.get("/")
        assert status == 200
    assert not forgotten.exists()
    assert not orphan.exists()
