"""field_diff: recorded vs desired fields as the leaf changes a reviewer reads."""

from __future__ import annotations

from reconciler.plan.actions import DiffChange, DiffEntry
from reconciler.plan.diff import field_diff

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
