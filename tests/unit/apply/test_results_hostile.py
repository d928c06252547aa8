"""A results file is the service's: a line nested deeper than the decoder goes is a results
error naming the line's problem, as a line that is not JSON is, never a RecursionError (which
reads as a bug of ours and escapes the resource's failure handling)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.apply.outputs import read_results
from reconciler.apply.summary import Tally, key_of, tally_file, tally_raw
from reconciler.errors import ReconcilerError

DEEP = b'{"key":"a","response":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}"
FINE = b'{"key":"b","response":{"candidates":[]}}'


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_bytes(FINE + b"\n" + DEEP + b"\n")
    return path


READERS: dict[str, Callable[[Path], object]] = {
    "the summary of a file": lambda path: tally_file(path, Tally()),
    "the summary of a line": lambda path: tally_raw(DEEP, Tally()),
    "a line's key": lambda path: key_of(DEEP),
    "the results read back": lambda path: list(read_results(path)),
}


@pytest.mark.parametrize("reader", READERS)
def test_a_results_line_nested_too_deeply_is_a_results_error(reader: str, tmp_path: Path) -> None:
    with pytest.raises(ReconcilerError, match="nested too deeply"):
        READERS[reader](_file(tmp_path))
