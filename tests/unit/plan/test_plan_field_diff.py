"""field_diff: recorded vs desired fields as the leaf changes a reviewer reads."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.plan.actions import DiffChange, DiffEntry
from reconciler.plan.diff import _identical, field_diff

FIELDS = {"model": "gemini-2.5-flash", "config": {"temperature": 1, "tags": ["a", "b"]}}


def test_equal_fields_have_no_diff() -> None:
    assert field_diff(FIELDS, dict(FIELDS), forces_replacement=True) == ()


def test_a_number_that_changes_type_is_still_a_change() -> None:
    desired = {**FIELDS, "config": {"temperature": 1.0, "tags": ["a", "b"]}}
    (entry,) = field_diff(FIELDS, desired, forces_replacement=True)
    assert (entry.path, entry.change, entry.old, entry.new) == (
        "config.temperature",
        DiffChange.CHANGED,
        1,
        1.0,
    )


def test_changed_added_and_removed_leaves_are_listed_by_path() -> None:
    desired = {
        "model": "gemini-3-flash-preview",
        "config": {"temperature": 1},
        "labels": {"t": "x"},
    }
    assert field_diff(FIELDS, desired, forces_replacement=False) == (
        DiffEntry("config.tags", DiffChange.REMOVED, ["a", "b"], None, False),
        DiffEntry("labels.t", DiffChange.ADDED, None, "x", False),
        DiffEntry("model", DiffChange.CHANGED, "gemini-2.5-flash", "gemini-3-flash-preview", False),
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=False) | st.text("ab", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab", max_size=2), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@given(_JSON, _JSON)
def test_the_quick_equality_of_fields_holds_only_where_their_json_text_is_equal(
    old: Any, new: Any
) -> None:
    """`1` vs `1.0` and `True` vs `1` are equal in Python but changes in
    JSON: the shortcut that skips writing the text must never call them identical."""
    if old == new and _identical(old, new):
        assert json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    copy = json.loads(json.dumps(old))
    assert _identical(old, copy)
    assert field_diff({"f": old}, {"f": copy}, forces_replacement=False) == ()


def test_fields_equal_in_python_but_written_differently_are_changes() -> None:
    for old, new in ((1, 1.0), (True, 1)):
        assert field_diff({"f": old}, {"f": new}, forces_replacement=False) != ()
