"""google-genai's own `tests/batches` and `tests/files` pass against the emulator: every test
that reaches the server passes, except the ones `runner.EXCEPTIONS` lists with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.emulator import running_emulator
from tests.sdk_suite.runner import EXCEPTIONS, run_suite, summary


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_sdks_own_batches_and_files_tests_pass_against_the_emulator(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "emulator", job_seconds=0) as emulator:
        outcomes = run_suite(emulator.base_url, tmp_path / "work")

    report = summary(outcomes)
    reached = [o for o in outcomes if o.reached]
    unexpected = [o for o in outcomes if o.outcome == "failed" and o.key not in EXCEPTIONS]
    still_failing = {o.key for o in outcomes if o.outcome == "failed"}
    assert len(reached) >= 60, report
    assert unexpected == [], report
    # The list stays true: an exception that now passes is taken off it.
    assert sorted(set(EXCEPTIONS) - still_failing) == [], report
