"""The `make security` table: cases tried / held / failed per security category.

A pytest plugin loaded with `-p tests.security.report`, not a conftest: under xdist only the
controller sees every test's report, and it loads no conftest below the test paths it was given.
"""

from __future__ import annotations

from typing import Any

import pytest

CATEGORIES = ("hostile_input", "secret_scan", "plan_tampering")
_tally: dict[str, list[int]] = {name: [0, 0, 0] for name in CATEGORIES}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count cases per category: a fuzz test counts the cases it ran (its `cases` property)."""
    if report.when != "call" and not (report.when == "setup" and report.failed):
        return
    keywords = set(report.keywords)
    cases = next((int(str(v)) for k, v in report.user_properties if k == "cases"), 1)
    for name in CATEGORIES:
        if name in keywords:
            tally = _tally[name]
            tally[0] += cases
            tally[1 if report.passed else 2] += cases if report.passed else 1


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The `make security` table, printed when a security marker was selected with -m."""
    if not any(name in (config.getoption("markexpr") or "") for name in CATEGORIES):
        return
    write = terminalreporter.write_line
    write("")
    write(f"{'category':<16}{'tried':>10}{'held':>10}{'failed':>10}")
    for name in CATEGORIES:
        tried, held, failed = _tally[name]
        write(f"{name:<16}{tried:>10,}{held:>10,}{failed:>10,}")
