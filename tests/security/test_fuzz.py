"""Fuzzing (hypothesis): every parser of user or stored input over >= 1,000 hostile cases each,
each parser in its own process so a crash is seen. Slow: `make security` or `pytest -m slow`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.hostile_input]
CASES = 1_000
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("parser", ["manifests", "project", "jsonl", "state", "plan"])
def test_parser_survives_hostile_input(
    parser: str, record_property: Callable[[str, object], None]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.security.fuzz_worker", parser, str(CASES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    crashes = 1 if result.returncode != 0 else 0
    report = json.loads(result.stdout.strip().splitlines()[-1]) if crashes == 0 else {}
    cases, tracebacks = report.get("cases", 0), report.get("tracebacks", 0)
    print(f"{parser}: {cases} cases, {tracebacks} tracebacks, {crashes} crashes")
    record_property("cases", cases)
    assert crashes == 0, (
        f"the {parser} fuzz process died ({result.returncode}): {result.stderr[-2000:]}"
    )
    assert tracebacks == 0, report["first"]
    assert cases >= CASES
