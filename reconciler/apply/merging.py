"""Merge a partial run's result lines into the previous results copy, in input order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from reconciler.apply.summary import key_of

_encoder = msgspec.json.Encoder()


def merge_results(
    previous: Iterable[bytes],
    replacements: Iterable[bytes | dict[str, Any]],
    scratch: Path,
    *,
    keep: Callable[[str], bool] | None = None,
) -> Iterator[bytes]:
    """Previous result lines with each line whose key has a replacement swapped in, in the
    previous order; replacement keys absent from `previous` follow in the order they came.
    Lines whose key `keep` refuses (requests no longer in the source) are left out.

    Used by `retry_failed_requests` and incremental re-runs, which run only some keys again.
    Memory holds each replacement's key and place in a spill file in `scratch`, never the
    lines themselves (a re-run can replace most of a large results file), and only the key of a
    previous line is decoded: the rest is copied byte for byte.

    Raises:
        ReconcilerError: a line is not JSON.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    spill = scratch / "replacements.jsonl"
    index: dict[str, tuple[int, int]] = {}
    """Key -> (offset, length) in the spill file; a later line for a key wins."""
    try:
        with spill.open("wb") as out:
            offset = 0
            for item in replacements:
                raw = item if isinstance(item, bytes) else _encoder.encode(item)
                index[key_of(raw)] = (offset, len(raw))
                out.write(raw)
                out.write(b"\n")
                offset += len(raw) + 1
        with spill.open("rb") as spilled:

            def replacement(place: tuple[int, int]) -> bytes:
                spilled.seek(place[0])
                return spilled.read(place[1])

            for line in previous:
                key = key_of(line)
                place = index.pop(key, None)
                if keep is None or keep(key):
                    yield line if place is None else replacement(place)
            for key, place in index.items():
                if keep is None or keep(key):
                    yield replacement(place)
    finally:
        spill.unlink(missing_ok=True)
