"""Field-level and request-key diffs between what the state recorded and what is desired.

Field diffs go through deepdiff (tree view) and come out as flat leaf entries, so a whole new
sub-mapping shows as one line per leaf rather than one opaque blob.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import JsonValue

from reconciler.plan.actions import DiffChange, DiffEntry, RequestChanges

REQUEST_KEYS_SHOWN = 10
"""How many keys of each kind a RequestChanges lists; the counts are always complete."""

_ADDED = ("dictionary_item_added", "iterable_item_added", "attribute_added")
_REMOVED = ("dictionary_item_removed", "iterable_item_removed", "attribute_removed")
_CHANGED = ("values_changed", "type_changes")


def _path_text(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _leaves(path: str, value: Any) -> Iterator[tuple[str, JsonValue]]:
    """Leaves of a JSON value under `path`; an empty mapping is a leaf of its own."""
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _leaves(f"{path}.{key}" if path else str(key), value[key])
    else:
        yield path, value


def _identical(old: Any, new: Any) -> bool:
    """Whether two equal JSON values are also written alike: the same type at every node, and
    floats with the same text (`0.0` and `-0.0` are equal). False says only "not sure"."""
    kind = type(old)
    if kind is not type(new):
        return False
    if kind is dict:
        return old.keys() == new.keys() and all(_identical(old[k], new[k]) for k in old)
    if kind is list or kind is tuple:
        return len(old) == len(new) and all(map(_identical, old, new))
    if kind is float:
        return bool(repr(old) == repr(new))
    return kind in (str, int, bool) or old is None


def field_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, forces_replacement: bool
) -> tuple[DiffEntry, ...]:
    """Leaf differences from `old` (recorded) to `new` (desired), sorted by path."""
    if not old and not new:
        return ()
    if not old or not new:
        # deepdiff reports an empty side as one root-level change; list the leaves instead.
        # A new resource's empty mappings (no labels, no media) say nothing; leave them out.
        if not old:
            return tuple(
                DiffEntry(p, DiffChange.ADDED, None, v, forces_replacement)
                for p, v in _leaves("", new)
                if v != {}
            )
        return tuple(
            DiffEntry(p, DiffChange.REMOVED, v, None, forces_replacement)
            for p, v in _leaves("", old)
        )
    if old == new and (
        _identical(old, new) or json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    ):
        # The common case (nothing changed) without deepdiff's tree walk: over 1,000 resources
        # that walk was half of `plan`'s time. JSON text equality keeps `1` vs `1.0` a change;
        # `_identical` answers most of them without writing the text.
        return ()
    # Imported here: only a changed resource needs it, and it costs 60 ms to import.
    from deepdiff import DeepDiff

    tree = DeepDiff(dict(old), dict(new), view="tree", verbose_level=2)
    entries: list[DiffEntry] = []
    for category in (*_ADDED, *_REMOVED, *_CHANGED):
        for level in tree.get(category, ()):
            path = _path_text(level.path(output_format="list"))
            if category in _ADDED:
                entries.extend(
                    DiffEntry(p, DiffChange.ADDED, None, v, forces_replacement)
                    for p, v in _leaves(path, level.t2)
                )
            elif category in _REMOVED:
                entries.extend(
                    DiffEntry(p, DiffChange.REMOVED, v, None, forces_replacement)
                    for p, v in _leaves(path, level.t1)
                )
            else:
                entries.append(
                    DiffEntry(path, DiffChange.CHANGED, level.t1, level.t2, forces_replacement)
                )
    return tuple(sorted(entries, key=lambda e: e.path))


def request_changes(
    old: Mapping[str, str], new: Mapping[str, str], *, shown: int = REQUEST_KEYS_SHOWN
) -> RequestChanges:
    """Keys added, removed and changed (different request digest) from `old` to `new`."""
    added = sorted(k for k in new if k not in old)
    removed = sorted(k for k in old if k not in new)
    changed = sorted(k for k in new if k in old and old[k] != new[k])
    return RequestChanges(
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        unchanged=len(new) - len(added) - len(changed),
        added_keys=tuple(added[:shown]),
        removed_keys=tuple(removed[:shown]),
        changed_keys=tuple(changed[:shown]),
    )
