"""`read_yaml_documents`: the size and encoding checks, the depth check, the fast path with its
cache of clean files, and the careful parse that words every diagnostic."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Protocol

from reconciler.errors import Diagnostic, SourceLocation
from reconciler.yamlsafe import parsers
from reconciler.yamlsafe.depth import depth_problem
from reconciler.yamlsafe.document import YamlDocument

MAX_YAML_BYTES = 10 * 1024 * 1024
"""Larger YAML files are refused unread: manifests are small; big inputs belong in a JSONL file."""

CACHE_FORMAT = 1
"""The shape of a cached document (`pack`); bump it when that or the conversion changes."""


class DocumentCache(Protocol):
    """Packed documents of clean files by the sha256 of their text, kept from an earlier run."""

    def get(self, digest: str) -> bytes | None: ...

    def put(self, digest: str, packed: bytes) -> None: ...


def _read_text(path: Path, shown: str, max_bytes: int) -> tuple[str | None, list[Diagnostic]]:
    """The file as text, or why not: refused over `max_bytes` (before reading) or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, [
                Diagnostic(
                    f"file is {size:,} bytes, over the {max_bytes:,}-byte limit for YAML; refusing to read it",
                    SourceLocation(shown),
                    hint="put large request sets in a JSONL file referenced by `source.file`",
                )
            ]
        return path.read_bytes().decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [
            Diagnostic(f"file is not UTF-8 text (byte {exc.start})", SourceLocation(shown))
        ]
    except OSError as exc:
        return None, [Diagnostic(f"cannot read file: {exc.strerror or exc}", SourceLocation(shown))]


def read_yaml_documents(
    path: Path,
    display: str | None = None,
    *,
    max_bytes: int = MAX_YAML_BYTES,
    fast: bool = False,
    cache: DocumentCache | None = None,
) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """Safely read every document of a YAML file, keeping positions; never raises for bad input.

    Refuses (with a diagnostic) files over `max_bytes`, non-UTF-8 text, syntax errors, tags that
    would construct objects, duplicate keys, and alias expansion beyond MAX_ALIASES / MAX_NODES.
    Empty documents are skipped.

    `fast` parses with libyaml (ruamel.yaml.clib) when it is installed, about 4x faster than the
    pure-Python parser, and applies the same checks to its node graph. A file with any problem is
    read again by the pure-Python parser, which alone makes the diagnostics; the documents of a
    clean file re-read themselves that way only when asked for an exact location (`at`).

    `cache` (with `fast`) holds the fast path's documents of clean files by the sha256 of their
    text: an unchanged file is not parsed again. Only documents without any problem are cached,
    so every diagnostic still comes from a parse.
    """
    shown = display or str(path)
    text, problems = _read_text(path, shown, max_bytes)
    if text is None:
        return [], problems
    digest = hashlib.sha256(text.encode()).hexdigest() if fast and cache is not None else None
    if digest is not None and cache is not None and (packed := cache.get(digest)) is not None:
        unpacked = unpack(packed, text, shown)
        if unpacked is not None:
            return unpacked, []
    too_deep = depth_problem(text, shown)
    if too_deep is not None:
        return [], [too_deep]
    if fast:
        documents = parsers.fast_documents(text, shown)
        if documents is not None:
            if digest is not None and cache is not None:
                packed = pack(documents)
                if packed is not None:
                    cache.put(digest, packed)
            return documents, []
    return parsers.careful_documents(text, shown)


def pack(documents: list[YamlDocument]) -> bytes | None:
    """Fast-path documents as msgpack (positions as [path, line, column] rows); None when the
    data does not fit msgpack (an integer beyond 64 bits)."""
    import msgspec

    rows = [
        (
            d.data,
            [(list(p), *at) for p, at in d.values.items()],
            [(list(p), *at) for p, at in d.keys.items()],
            d.start,
        )
        for d in documents
    ]
    try:
        return msgspec.msgpack.encode(rows)
    except (OverflowError, TypeError, ValueError):
        return None


def unpack(packed: bytes, text: str, shown: str) -> list[YamlDocument] | None:
    """`pack`'s documents again, re-readable by the careful parser like fresh ones; None for
    anything malformed (the file is then parsed)."""
    import msgspec

    careful = parsers.CarefulRead(text, shown)
    documents: list[YamlDocument] = []
    try:
        for data, values, keys, start in msgspec.msgpack.decode(packed):
            documents.append(
                YamlDocument(
                    shown,
                    data,
                    {tuple(p): (int(line), int(col)) for p, line, col in values},
                    {tuple(p): (int(line), int(col)) for p, line, col in keys},
                    (int(start[0]), int(start[1])),
                    functools.partial(careful.document, len(documents)),
                )
            )
    except (msgspec.DecodeError, TypeError, ValueError, IndexError):
        return None
    return documents
