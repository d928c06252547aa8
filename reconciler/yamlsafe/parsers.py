"""The two parsers: libyaml's (fast, when ruamel.yaml.clib is installed) and the pure-Python,
position-keeping one that alone words diagnostics; both convert through yamlsafe.convert."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from typing import Any

from reconciler.errors import Diagnostic, SourceLocation
from reconciler.yamlsafe.convert import Converter, YamlRefused, position
from reconciler.yamlsafe.document import YamlDocument


def events(text: str) -> Iterator[Any]:
    """The YAML event stream: libyaml's when installed (fast), else the pure-Python parser's."""
    loader_class = c_loader()
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
def c_loader() -> type[Any] | None:
    """libyaml's parser + composer with ruamel's safe constructor and YAML 1.2 resolver: the
    combination `YAML(typ="safe")` builds per call, built once. None without ruamel.yaml.clib.

    Its `resolve` is `VersionedResolver.resolve` over one table of YAML 1.2's implicit rules
    built here, once: ruamel's builds that table again for every loader (one per file), asks
    for the version twice per scalar through three failed attribute lookups, and extends the
    table's lists in place on every lookup (which changes no answer: the added rules come after
    the ones that match first). That was a fifth of parsing a manifest. The fast path never
    sees a `%YAML` directive (`fast_documents` leaves those to the careful parser), so the
    version is always ruamel's default, 1.2; tests/unit/yamlsafe/test_fast_resolver.py holds
    the answers to ruamel's own."""
    try:
        # Imported by name: the extension ships no type information.
        CParser: Any = importlib.import_module("_ruamel_yaml").CParser
    except ImportError:
        return None
    from ruamel.yaml.compat import _DEFAULT_YAML_VERSION
    from ruamel.yaml.constructor import SafeConstructor
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver, implicit_resolvers
    from ruamel.yaml.tag import Tag

    table = implicit_table(_DEFAULT_YAML_VERSION, implicit_resolvers)
    anywhere = tuple(table.get(None, ()))

    class Loader(CParser, SafeConstructor, VersionedResolver):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            self._parser = self._composer = self
            SafeConstructor.__init__(self, loader=self)
            VersionedResolver.__init__(self, version=None, loadumper=self)

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and implicit[0]:
                for tag, regexp in (*table.get(value[:1], ()), *anywhere):
                    if regexp.match(value):
                        return Tag(suffix=tag)
                implicit = (False, implicit[1])
            return VersionedResolver.resolve(self, kind, value, implicit)

    return Loader


def implicit_table(version: Any, rules: Any) -> dict[str | None, list[tuple[str, Any]]]:
    """ruamel's implicit resolver rules of `version` by the first character they match (None:
    any), in their order: what `VersionedResolver.versioned_resolver` builds per loader."""
    table: dict[str | None, list[tuple[str, Any]]] = {}
    for versions, tag, regexp, first in rules:
        if version in versions:
            for character in first or [None]:
                table.setdefault(character, []).append((tag, regexp))
    return table


def fast_documents(text: str, shown: str) -> list[YamlDocument] | None:
    """The documents as parsed by libyaml, or None when the careful parser must decide: libyaml
    missing, a `%` directive (the C parser would not switch YAML versions as the pure one does),
    or any problem at all (so diagnostics always come from the position-keeping parser)."""
    loader_class = c_loader()
    if loader_class is None or text.startswith("%") or "\n%" in text:
        return None
    careful = CarefulRead(text, shown)
    documents: list[YamlDocument] = []
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            converter = Converter(shown, loader, no_aliases=True)
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
                    position(node),
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


class CarefulRead:
    """One file's text, parsed by the position-keeping parser on first demand, then kept."""

    __slots__ = ("_documents", "shown", "text")

    def __init__(self, text: str, shown: str) -> None:
        self.text = text
        self.shown = shown
        self._documents: list[YamlDocument] | None = None

    def document(self, index: int) -> YamlDocument | None:
        if self._documents is None:
            self._documents = careful_documents(self.text, self.shown)[0]
        return self._documents[index] if index < len(self._documents) else None


def careful_documents(text: str, shown: str) -> tuple[list[YamlDocument], list[Diagnostic]]:
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
            converter = Converter(shown, yaml.constructor)
            try:
                data = converter.convert(node, ())
            except YamlRefused as refused:
                diagnostics.append(refused.diagnostic)
                continue
            diagnostics.extend(converter.diagnostics)
            if converter.diagnostics or data is None:
                # A document with refused content is not validated further: the placeholders
                # left for refused values would only add misleading "wrong type" errors.
                continue
            documents.append(
                YamlDocument(shown, data, converter.values, converter.keys, position(node))
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
