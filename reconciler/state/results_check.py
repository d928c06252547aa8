"""Whether the local copies of recorded results are still what the state says they are.

A results file deleted or edited on disk is drift, like a job gone at the service: the plan
must show it and apply must restore it while the service still has the results. Reading is
cheap in the common case: a file whose size differs is changed; one not modified since it was
collected is trusted; only a file touched since (an edit, or a fresh git checkout) is hashed.
Results in Cloud Storage are not checked here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from reconciler.hashing import sha256_file
from reconciler.state.document import ResultsRecord, State

_CLOCK_SLACK = timedelta(seconds=2)
"""Files modified this close to their collection are hashed too (coarse file system clocks)."""


class ResultsCheck(enum.StrEnum):
    """How a recorded local results file differs from its record."""

    MISSING = "missing"
    CHANGED = "changed"


def check_local_results(root: Path, state: State) -> Mapping[str, ResultsCheck]:
    """Per resource whose recorded local results are missing or changed, how; intact ones and
    results in Cloud Storage or BigQuery are left out."""
    found: dict[str, ResultsCheck] = {}
    for name, record in state.resources.items():
        if record.results is None or record.results.location.startswith(("gs://", "bq://")):
            continue
        check = _check(root / record.results.location, record.results)
        if check is not None:
            found[name] = check
    return found


def _check(path: Path, results: ResultsRecord) -> ResultsCheck | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ResultsCheck.MISSING
    except OSError:
        return ResultsCheck.CHANGED
    if stat.st_size != results.bytes:
        return ResultsCheck.CHANGED
    modified = stat.st_mtime
    if modified < (results.collected_at - _CLOCK_SLACK).timestamp():
        return None
    try:
        digest = sha256_file(path)
    except OSError:
        return ResultsCheck.CHANGED
    return None if digest == results.sha256 else ResultsCheck.CHANGED
