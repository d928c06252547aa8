"""A composed node graph -> plain data and positions, refusing what plain-data files never need:
object-constructing tags, non-scalar or duplicate keys, alias expansion past the budgets, integers
longer than Python reads. Both parsers (yamlsafe.parsers) hand their nodes to the same `Converter`.
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import Diagnostic, SourceLocation
from reconciler.jsonsafe import MAX_INT_DIGITS
from reconciler.yamlsafe.document import JsonPath

MAX_ALIASES = 100
"""Alias (`*name`) uses allowed per document; a billion-laughs file needs few aliases but
expands them exponentially, so expansion is also capped by MAX_NODES."""
MAX_NODES = 1_000_000
"""Nodes a document may expand to, aliases included."""

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class Budget:
    def __init__(self) -> None:
        self.nodes = 0
        self.aliases = 0


class YamlRefused(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def position(node: Any) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


class Converter:
    """Turns a composed node graph into plain data, refusing what safe manifests never need."""

    def __init__(self, display: str, constructor: Any, *, no_aliases: bool = False) -> None:
        self.display = display
        self.constructor = constructor
        self.no_aliases = no_aliases
        self.values: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.budget = Budget()
        self.seen: set[int] = set()

    def where(self, node: Any) -> SourceLocation:
        return SourceLocation(self.display, *position(node))

    def convert(self, node: Any, path: JsonPath, alias_site: Any = None) -> Any:
        self.budget.nodes += 1
        if self.budget.nodes > MAX_NODES:
            raise YamlRefused(
                Diagnostic(
                    f"document expands to more than {MAX_NODES:,} nodes; refusing to expand it (alias bomb?)",
                    self.where(alias_site or node),
                    hint="write the values out instead of nesting aliases",
                )
            )
        if self.no_aliases and id(node) in self.seen:
            # A node reached twice is reached through an alias. libyaml's composer leaves
            # `anchor` unset, so alias uses cannot be counted as below: the careful parser does.
            raise YamlRefused(Diagnostic("aliases are counted by the careful parser"))
        if id(node) in self.seen and (node.anchor or alias_site is not None):
            self.budget.aliases += 1
            if self.budget.aliases > MAX_ALIASES:
                raise YamlRefused(
                    Diagnostic(
                        f"more than {MAX_ALIASES} alias uses (`*name`) in one document; refusing to expand them",
                        self.where(alias_site or node),
                        hint="YAML aliases are allowed sparingly; repeat the values or split the manifest",
                    )
                )
        self.seen.add(id(node))
        self.values.setdefault(path, position(node))
        kind = type(node).__name__
        # ruamel spells a node's tag out anew at every read of `tag`: read once per node.
        tag = node.tag
        if kind == "MappingNode":
            if tag != _MAP_TAG:
                return self.refuse_tag(node)
            return self.mapping(node, path)
        if kind == "SequenceNode":
            if tag != _SEQ_TAG:
                return self.refuse_tag(node)
            return [
                self.convert(item, (*path, i), item if item.anchor else None)
                for i, item in enumerate(node.value)
            ]
        if tag == _TIMESTAMP_TAG:
            # Manifests hold no dates; a date-looking scalar is kept as the text the user wrote.
            return node.value
        if tag not in _PLAIN_TAGS:
            return self.refuse_tag(node)
        return self.scalar(node, tag)

    def scalar(self, node: Any, tag: str) -> Any:
        """A plain scalar's value (`tag` is its tag, read once)."""
        if tag == _STR_TAG:
            # What the safe constructor makes of a string scalar (`construct_yaml_str` is its
            # `construct_scalar`: the node's text), without its per-node bookkeeping.
            return node.value
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
            key_tag = key_node.tag
            if key_tag == _MERGE_TAG:
                merged = self.convert(value_node, path, value_node)
                sources = merged if isinstance(merged, list) else [merged]
                for source in sources:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            result.setdefault(k, v)
                continue
            if type(key_node).__name__ != "ScalarNode" or key_tag not in _PLAIN_TAGS:
                self.diagnostics.append(
                    Diagnostic("mapping keys must be plain scalars", self.where(key_node))
                )
                continue
            key = self.scalar(key_node, key_tag)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in first_key:
                self.diagnostics.append(
                    Diagnostic(
                        f"duplicate key `{key}` (first at line {position(first_key[key])[0]})",
                        self.where(key_node),
                        hint="each key may appear once in a mapping",
                    )
                )
                continue
            first_key[key] = key_node
            child = (*path, key)
            self.keys[child] = position(key_node)
            result[key] = self.convert(value_node, child, value_node if value_node.anchor else None)
        return result
