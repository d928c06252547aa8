"""The manifest's path check on text answers as the pathlib check it replaced."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.manifests.model import _relative_path_problem


def _pathlib_problem(value: str) -> str | None:
    """The check as it was written with pathlib."""
    if not value.strip():
        return "path is empty"
    if (
        PurePosixPath(value).is_absolute()
        or PureWindowsPath(value).is_absolute()
        or value.startswith("~")
    ):
        return f"`{value}` is absolute; paths are relative to the project root"
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return f"`{value}` leaves the project root (`..`); paths must stay inside it"
    return None


@given(st.text(alphabet="ab.:/\\~ C", max_size=12))
@example("C:\\data\\in.jsonl")
@example("C:data")
@example("\\\\server\\share\\x")
@example("//server/share/x")
@example("\\x")
@example("a/../b")
@example("a\\..\\b")
@example("./..")
@example("..")
@example("...")
@example("data/in.jsonl")
def test_the_relative_path_check_answers_as_pathlib_does(value: str) -> None:
    assert _relative_path_problem(value) == _pathlib_problem(value)
