"""No import cycles in reconciler/: neither between modules nor between the children of a package.

The import-linter contracts in pyproject.toml fix the order of the layers they name; this test
covers everything else, so a cycle added in a package no contract names still fails. The graph
comes from grimp (import-linter's own engine), TYPE_CHECKING imports included, as the contracts
count them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import grimp

Edges = Mapping[str, Iterable[str]]


def strongly_connected(nodes: Iterable[str], edges: Edges) -> list[list[str]]:
    """The cycles of a directed graph: each strongly connected component of more than one node
    (or one node importing itself), members sorted, components sorted. Tarjan's algorithm,
    iterative so deep graphs cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    work: list[tuple[str, list[str]]] = []
    """The depth-first path: each node with the targets it has still to look at."""

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, sorted(edges.get(node, ()))))

    for root in sorted(nodes):
        if root in index:
            continue
        visit(root)
        while work:
            node, pending = work[-1]
            if pending:
                target = pending.pop()
                if target not in index:
                    visit(target)
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(sorted(component))
    return sorted(found)


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    return strongly_connected(graph.modules, edges)


def package_cycles(graph: grimp.ImportGraph) -> dict[str, list[list[str]]]:
    """Per package, the cycles among its direct children, each child standing for itself and
    everything below it: `a/x.py -> b/y.py` and `b/z.py -> a/w.py` make `a` and `b` a cycle."""
    result: dict[str, list[list[str]]] = {}
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        children = graph.find_children(package)
        owner = _owner_of(children)
        edges: dict[str, set[str]] = {}
        for module in graph.modules:
            source = owner(module)
            if source is None:
                continue
            for imported in graph.find_modules_directly_imported_by(module):
                target = owner(imported)
                if target is not None and target != source:
                    edges.setdefault(source, set()).add(target)
        cycles = strongly_connected(children, edges)
        if cycles:
            result[package] = cycles
    return result


def _owner_of(children: set[str]) -> Callable[[str], str | None]:
    def owner(module: str) -> str | None:
        for child in children:
            if module == child or module.startswith(child + "."):
                return child
        return None

    return owner


def _reconciler_graph() -> grimp.ImportGraph:
    # No cache directory: the graph is small (a few hundredths of a second to build) and a cache
    # written from here would outlive the test.
    return grimp.build_graph("reconciler", cache_dir=None)


def test_no_module_in_reconciler_imports_itself_back() -> None:
    graph = _reconciler_graph()
    cycles = module_cycles(graph)
    assert cycles == [], "import cycles between modules:\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_no_package_in_reconciler_has_children_that_import_each_other_in_a_circle() -> None:
    cycles = package_cycles(_reconciler_graph())
    assert cycles == {}, "import cycles between the children of a package:\n" + "\n".join(
        f"{package}: " + " <-> ".join(cycle) for package, found in cycles.items() for cycle in found
    )


def test_cycle_finder_reports_a_cycle_through_three_modules_and_nothing_else() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    graph.add_import(importer="pkg.d", imported="pkg.a")

    assert module_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_cycle_finder_reports_a_module_that_imports_itself() -> None:
    assert strongly_connected(["a", "b"], {"a": ["a", "b"]}) == [["a"]]


def test_cycle_finder_reports_packages_whose_modules_import_each_other_without_a_module_cycle() -> (
    None
):
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.a.x", "pkg.a.w", "pkg.b", "pkg.b.y", "pkg.b.z"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a.x", imported="pkg.b.y")
    graph.add_import(importer="pkg.b.z", imported="pkg.a.w")

    assert module_cycles(graph) == []
    assert package_cycles(graph) == {"pkg": [["pkg.a", "pkg.b"]]}
