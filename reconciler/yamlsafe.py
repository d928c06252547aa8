"""Safe YAML with positions: every document of a file as plain data, each value located.

Shared by the project file (reconciler.config) and manifests (reconciler.manifests). It refuses
what plain-data files never need (object-constructing tags, duplicate keys, alias bombs, huge or
non-UTF-8 files) as located diagnostics, and never raises for bad input. It knows nothing of
what the documents mean: validation and its messages live in reconciler.diagnostics.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import Diagnostic, SourceLocation
from reconciler.jsonsafe import MAX_INT_DIGITS

MAX_YAML_BYTES = 10 * 1024 * 1024
"""Larger YAML files are refused unread: manifests are small; big inputs belong in a JSONL file."""
MAX_ALIASES = 100
"""Alias (`*name`) uses allowed per document; a billion-laughs file needs few aliases but
expands them exponentially, so expansion is also capped by MAX_NODES."""
MAX_NODES = 1_000_000
"""Nodes a document may expand to, aliases included."""
MAX_YAML_DEPTH = 64
"""Mappings and lists nested in one another (flow `[`/`{` or block indentation). A manifest
needs about ten; deeper documents are refused before either parser builds them, because both
compose recursively: libyaml's composer overflows the C stack (SIGSEGV) and the pure-Python one
the recursion limit."""

_BLOCK_PREFIX = re.compile(r"^[ ]*(?:[-?][ ]+)*", re.MULTILINE)
_START_EVENTS = ("MappingStartEvent", "SequenceStartEvent")
_END_EVENTS = ("MappingEndEvent", "SequenceEndEvent")

JsonPath = tuple[str | int, ...]

CACHE_FORMAT = 1
"""The shape of a cached document (`_pack`); bump it when that or the conversion changes."""


class DocumentCache(Protocol):
    """Packed documents of clean files by the sha256 of their text, kept from an earlier run."""

    def get(self, digest: str) -> bytes | None: ...

    def put(self, digest: str, packed: bytes) -> None: ...


_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One YAML document as plain JSON-like data, with the position of every value and key."""

    path: str
    """The file as shown to the user (relative to the project root where possible)."""
    data: Any
    values: dict[JsonPath, tuple[int, int]]
    """JSON path -> 1-based (line, column) of the value."""
    keys: dict[JsonPath, tuple[int, int]]
    """JSON path -> 1-based (line, column) of the mapping key that holds the value."""
    start: tuple[int, int] = (1, 1)
    careful: Callable[[], YamlDocument | None] | None = field(
        default=None, compare=False, repr=False
    )
    """For a document read on the fast path: re-reads it with the position-keeping parser.
    Positions above then come from libyaml's marks, which agree with it for what the fast path
    accepts; `at` still asks the careful parser, so every diagnostic is located by one parser."""

    def at(self, path: JsonPath, *, key: bool = False, exact: bool = True) -> SourceLocation:
        """The location of `path` (its key if `key`), else of its nearest present ancestor.

        `exact=False` skips re-reading a fast-path document: for recording where something was
        declared, when no diagnostic is being made (that would cost a slow parse per file)."""
        if exact and self.careful is not None:
            precise = self.careful()
            if precise is not None:
                return precise.at(path, key=key)
        probe = tuple(path)
        while True:
            table = self.keys if key and probe in self.keys else self.values
            if probe in table:
                line, column = table[probe]
                return SourceLocation(self.path, line, column)
            if not probe:
                return SourceLocation(self.path, *self.start)
            probe = probe[:-1]

    def resolve(self, loc: Sequence[str | int]) -> tuple[JsonPath, JsonPath]:
        """Split a validator's `loc` into the part present in the data and the rest.

        Validators add steps the data does not have (a union member's name, a model validator);
        those are skipped while later steps still match, so errors land on the right node."""
        found: JsonPath = ()
        node = self.data
        rest: list[str | int] = []
        for step in loc:
            in_mapping = isinstance(node, dict) and isinstance(step, str) and step in node
            in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
            if in_mapping or in_list:
                node = node[step]
                found = (*found, step)
                rest = []
            else:
                rest.append(step)
        return found, tuple(rest)


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0
        self.aliases = 0


class _YamlRefused(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _position(node: Any) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


class _Converter:
    """Turns a composed node graph into plain data, refusing what safe manifests never need."""

    def __init__(self, display: str, constructor: Any, *, no_aliases: bool = False) -> None:
        self.display = display
        self.constructor = constructor
        self.no_aliases = no_aliases
        self.values: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.budget = _Budget()
        self.seen: set[int] = set()

    def where(self, node: Any) -> SourceLocation:
        return SourceLocation(self.display, *_position(node))

    def convert(self, node: Any, path: JsonPath, alias_site: Any = None) -> Any:
        self.budget.nodes += 1
        if self.budget.nodes > MAX_NODES:
            raise _YamlRefused(
                Diagnostic(
                    f"document expands to more than {MAX_NODES:,} nodes; refusing to expand it (alias bomb?)",
                    self.where(alias_site or node),
                    hint="write the values out instead of nesting aliases",
                )
            )
        if self.no_aliases and id(node) in self.seen:
            # A node reached twice is reached through an alias. libyaml's composer leaves
            # `anchor` unset, so alias uses cannot be counted as below: the careful parser does.
            raise _YamlRefused(Diagnostic("aliases are counted by the careful parser"))
        if id(node) in self.seen and (node.anchor or alias_site is not None):
            self.budget.aliases += 1
            if self.budget.aliases > MAX_ALIASES:
                raise _YamlRefused(
                    Diagnostic(
                        f"more than {MAX_ALIASES} alias uses (`*name`) in one document; refusing to expand them",
                        self.where(alias_site or node),
                        hint="YAML aliases are allowed sparingly; repeat the values or split the manifest",
                    )
                )
        self.seen.add(id(node))
        self.values.setdefault(path, _position(node))
        kind = type(node).__name__
        if kind == "MappingNode":
            if node.tag != _MAP_TAG:
                return self.refuse_tag(node)
            return self.mapping(node, path)
        if kind == "SequenceNode":
            if node.tag != _SEQ_TAG:
                return self.refuse_tag(node)
            return [
                self.convert(item, (*path, i), item if item.anchor else None)
                for i, item in enumerate(node.value)
            ]
        if node.tag == _TIMESTAMP_TAG:
            # Manifests hold no dates; a date-looking scalar is kept as the text the user wrote.
            return node.value
        if node.tag not in _PLAIN_TAGS:
            return self.refuse_tag(node)
        return self.scalar(node)

    def scalar(self, node: Any) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except ValueError:
            # Python reads at most MAX_INT_DIGITS digits of an integer and says so with a
            # ValueError; nothing in a manifest needs more, and a quoted value stays a string.
            self.diagnostics.append(
                Diagnostic(
                    f"the number here has {len(node.value):,} characters, more than the "
                    f"{MAX_INT_DIGITS:,} digits an integer may have",
                    self.where(node),
                    hint="quote it to make it a string",
                )
            )
            return None

    def refuse_tag(self, node: Any) -> None:
        self.diagnostics.append(
            Diagnostic(
                f"YAML tag `{node.tag}` is not allowed: manifests are plain data (mappings, lists, strings, numbers, booleans)",
                self.where(node),
                hint="remove the tag",
            )
        )
        return None

    def mapping(self, node: Any, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_key: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = self.convert(value_node, path, value_node)
                sources = merged if isinstance(merged, list) else [merged]
                for source in sources:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            result.setdefault(k, v)
                continue
            if type(key_node).__name__ != "ScalarNode" or key_node.tag not in _PLAIN_TAGS:
                self.diagnostics.append(
                    Diagnostic("mapping keys must be plain scalars", self.where(key_node))
                )
                continue
            key = self.scalar(key_node)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in first_key:
                self.diagnostics.append(
                    Diagnostic(
                        f"duplicate key `{key}` (first at line {_position(first_key[key])[0]})",
                        self.where(key_node),
                        hint="each key may appear once in a mapping",
                    )
                )
                continue
            first_key[key] = key_node
            child = (*path, key)
            self.keys[child] = _position(key_node)
            result[key] = self.convert(value_node, child, value_node if value_node.anchor else None)
        return result


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
        unpacked = _unpack(packed, text, shown)
        if unpacked is not None:
            return unpacked, []
    too_deep = _depth_problem(text, shown)
    if too_deep is not None:
        return [], [too_deep]
    if fast:
        documents = _fast_documents(text, shown)
        if documents is not None:
            if digest is not None and cache is not None:
                packed = _pack(documents)
                if packed is not None:
                    cache.put(digest, packed)
            return documents, []
    return _careful_documents(text, shown)


def _pack(documents: list[YamlDocument]) -> bytes | None:
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


def _unpack(packed: bytes, text: str, shown: str) -> list[YamlDocument] | None:
    """`_pack`'s documents again, re-readable by the careful parser like fresh ones; None for
    anything malformed (the file is then parsed)."""
    import msgspec

    careful = _CarefulRead(text, shown)
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


def _nesting_bound(text: str) -> int:
    """A cheap upper bound of the nesting depth: every flow opener counts, and block nesting
    needs more indentation or a `- `/`? ` marker per level (twice: a block sequence may sit at
    its parent key's indentation). Loose, but it keeps the exact check off ordinary files."""
    flow = text.count("[") + text.count("{")
    block = max((len(m.group(0)) for m in _BLOCK_PREFIX.finditer(text)), default=0)
    return flow + 2 * block + 2


def _depth_problem(text: str, shown: str) -> Diagnostic | None:
    """A diagnostic at the first collection nested deeper than MAX_YAML_DEPTH, else None.

    Only event parsers run here, and both keep explicit stacks instead of recursing; the walk
    stops at the first level too many, so a hostile file costs no more than its first levels.
    Syntax errors are left for the careful parser to word."""
    if _nesting_bound(text) <= MAX_YAML_DEPTH:
        return None
    depth = 0
    try:
        for event in _events(text):
            name = type(event).__name__
            if name in _START_EVENTS:
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    mark = event.start_mark
                    return Diagnostic(
                        f"mappings and lists are nested more than {MAX_YAML_DEPTH} levels deep "
                        "here; refusing to read further",
                        SourceLocation(shown, mark.line + 1, mark.column + 1),
                        hint="manifests need about ten levels; put deep request data in a JSONL file",
                    )
            elif name in _END_EVENTS:
                depth -= 1
    except Exception:
        return None
    return None


def _events(text: str) -> Iterator[Any]:
    """The YAML event stream: libyaml's when installed (fast), else the pure-Python parser's."""
    loader_class = _c_loader()
    if loader_class is None:
        from ruamel.yaml import YAML

        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = loader_class(text)
    try:
        while (event := parser.get_event()) is not None:
            yield event
            if type(event).__name__ == "StreamEndEvent":
                return
    finally:
        parser.dispose()


@functools.cache
def _c_loader() -> type[Any] | None:
    """libyaml's parser + composer with ruamel's safe constructor and YAML 1.2 resolver: the
    combination `YAML(typ="safe")` builds per call, built once. None without ruamel.yaml.clib."""
    try:
        # Imported by name: the extension ships no type information.
        CParser: Any = importlib.import_module("_ruamel_yaml").CParser
    except ImportError:
        return None
    from ruamel.yaml.constructor import SafeConstructor
    from ruamel.yaml.resolver import VersionedResolver

    class Loader(CParser, SafeConstructor, VersionedResolver):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            self._parser = self._composer = self
            SafeConstructor.__init__(self, loader=self)
            VersionedResolver.__init__(self, version=None, loadumper=self)

    return Loader


def _fast_documents(text: str, shown: str) -> list[YamlDocument] | None:
    """The documents as parsed by libyaml, or None when the careful parser must decide: libyaml
    missing, a `%` directive (the C parser would not switch YAML versions as the pure one does),
    or any problem at all (so diagnostics always come from the position-keeping parser)."""
    loader_class = _c_loader()
    if loader_class is None or text.startswith("%") or "\n%" in text:
        return None
    careful = _CarefulRead(text, shown)
    documents: list[YamlDocument] = []
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            converter = _Converter(shown, loader, no_aliases=True)
            data = converter.convert(node, ())
            if converter.diagnostics:
                return None
            if data is None:
                continue
            documents.append(
                YamlDocument(
                    shown,
                    data,
                    converter.values,
                    converter.keys,
                    _position(node),
                    functools.partial(careful.document, len(documents)),
                )
            )
    except Exception:
        # Anything libyaml or the checks object to (syntax, refused expansion, a constructor's
        # complaint) is for the careful parser to locate and word.
        return None
    finally:
        loader.dispose()
    return documents


class _CarefulRead:
    """One file's text, parsed by the position-keeping parser on first demand, then kept."""

    __slots__ = ("_documents", "shown", "text")

    def __init__(self, text: str, shown: str) -> None:
        self.text = text
        self.shown = shown
        self._documents: list[YamlDocument] | None = None

    def document(self, index: int) -> YamlDocument | None:
        if self._documents is None:
            self._documents = _careful_documents(self.text, self.shown)[0]
        return self._documents[index] if index < len(self._documents) else None


def _careful_documents(text: str, shown: str) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """The pure-Python, position-keeping parse: slow, and the authority on every diagnostic."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    documents: list[YamlDocument] = []
    diagnostics: list[Diagnostic] = []
    try:
        for node in yaml.compose_all(text):
            if node is None:
                continue
            converter = _Converter(shown, yaml.constructor)
            try:
                data = converter.convert(node, ())
            except _YamlRefused as refused:
                diagnostics.append(refused.diagnostic)
                continue
            diagnostics.extend(converter.diagnostics)
            if converter.diagnostics or data is None:
                # A document with refused content is not validated further: the placeholders
                # left for refused values would only add misleading "wrong type" errors.
                continue
            documents.append(
                YamlDocument(shown, data, converter.values, converter.keys, _position(node))
            )
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = (
            SourceLocation(shown, mark.line + 1, mark.column + 1) if mark else SourceLocation(shown)
        )
        problem = exc.problem or exc.context or "invalid YAML"
        diagnostics.append(Diagnostic(f"YAML syntax error: {problem}", location))
    except YAMLError as exc:
        diagnostics.append(Diagnostic(f"YAML error: {exc}", SourceLocation(shown)))
    return documents, diagnostics
