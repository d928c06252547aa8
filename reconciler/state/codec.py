"""State <-> bytes: the one canonical encoding both backends store.

The encoding is JSON with sorted keys and two-space indentation, so the local file diffs well in
git and equal documents always encode to equal bytes (the backends rely on that to skip writes).
Decoding migrates older format versions and validates; it never returns a half-read document.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from reconciler.state.document import State
from reconciler.state.migrations import StateFormatError, migrate


def encode(state: State) -> bytes:
    """The canonical bytes of `state` (UTF-8 JSON, sorted keys, indented, trailing newline)."""
    data = state.model_dump(mode="json")
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def decode(data: bytes | str, *, source: str) -> State:
    """Parse, migrate and validate a stored document.

    Args:
        data: the stored bytes (or text, as PostgreSQL returns it).
        source: where it came from, for messages.

    Raises:
        StateFormatError: not JSON, not an object, or not a valid state document.
        StateError: a newer format version than this reconciler supports.
    """
    try:
        raw: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFormatError(f"{source} is corrupt: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise StateFormatError(f"{source} is corrupt: expected a JSON object at the top")
    migrated = migrate(raw, source=source)
    try:
        return State.model_validate(migrated)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise StateFormatError(
            f"{source} is corrupt: `{where}`: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None
