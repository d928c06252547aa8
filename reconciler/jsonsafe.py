"""Bounded JSON reads for documents the tool reads back (state, saved plans): limits, not crashes.

`json.loads` turns a 5,000-digit integer into a ValueError and a document nested a few
thousand levels deep into a RecursionError; both would surface as "Internal error". Here they
become a `JsonLimitError` naming the limit, which each reader words for its own document.
Stdlib only: it sits beside `errors` at the bottom of the layers.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 128
"""Containers nested in one document. The state and plan schemas need a dozen levels; the rest
is room for manifest values recorded inside them (YAML allows 64, see yamlsafe.MAX_YAML_DEPTH)."""
MAX_INT_DIGITS = 4300
"""Digits of one integer: Python's own limit for reading one (`sys.get_int_max_str_digits`).
Counts, serials and sizes fit in 20; a longer one is refused instead of escaping as the
ValueError Python raises."""


class JsonLimitError(ValueError):
    """The document exceeds MAX_JSON_DEPTH or MAX_INT_DIGITS; the message says which."""


class JsonDuplicateKeyError(ValueError):
    """One object names the same key twice (`key`): JSON parsers keep the last silently."""

    def __init__(self, key: str) -> None:
        super().__init__(f"`{key}` appears twice in one object")
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonDuplicateKeyError(key)
            seen.add(key)
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests containers deeper than `limit`. Iterative: no recursion limit."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads_bounded(
    data: bytes | str, *, max_depth: int | None = MAX_JSON_DEPTH, unique_keys: bool = False
) -> Any:
    """Parse JSON within MAX_INT_DIGITS and `max_depth` (None: only as deep as the parser goes,
    for large documents whose schema bounds their depth, where a walk would cost a second pass).
    `unique_keys`: refuse an object naming a key twice (a git merge of two branches that each
    added the same record writes that, and the last one would silently win); it costs about
    half as much again as the parse.

    Raises:
        json.JSONDecodeError, UnicodeDecodeError: not JSON.
        JsonLimitError: an integer too long, or nesting too deep.
        JsonDuplicateKeyError: `unique_keys` and a key given twice in one object.
    """
    limit = max_depth or MAX_JSON_DEPTH
    try:
        value = json.loads(data, object_pairs_hook=_unique_object if unique_keys else None)
    except RecursionError:
        raise JsonLimitError(f"it nests deeper than {limit} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError, JsonDuplicateKeyError):
        raise
    except ValueError:
        # The only other ValueError json.loads raises: an integer over Python's digit limit.
        raise JsonLimitError(f"an integer has more than {MAX_INT_DIGITS:,} digits") from None
    if max_depth is not None and depth_exceeds(value, max_depth):
        raise JsonLimitError(f"it nests deeper than {max_depth} levels")
    return value
