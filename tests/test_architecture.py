"""The import structure: no import circles, and each layer imports only the layers below it.

Built with grimp from the source of the installed packages, counting *every* import statement:
module level, inside functions, and inside ``if TYPE_CHECKING:`` blocks (an import that only the
type checker runs still ties the two modules together). From the bottom up:

* the plugin contract (:mod:`hennframework.plugin` and the modules it re-exports: scheme,
  codec, backend, exceptions, randomness, fingerprints);
* the schemes (:mod:`hennframework.schemes`) and scheme plugins, written against that contract;
* the model API (:mod:`hennframework.nn`), written against the tensor protocol;
* the file layer, the registry and everything that uses them (io, registry, workflow, cli, ...).
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from grimp import ImportGraph

grimp = pytest.importorskip("grimp", reason="grimp is in the test extra: pip install -e '.[test]'")

#: hennframework's own packages, and the plugins in this repository when they are installed.
PACKAGES = [
    name
    for name in ("hennframework", "hennframework_backends", "hennframework_ckks")
    if importlib.util.find_spec(name) is not None
]


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    built: ImportGraph = grimp.build_graph(
        *PACKAGES,
        include_external_packages=False,
        exclude_type_checking_imports=False,
        cache_dir=None,
    )
    return built


def _strongly_connected(graph: ImportGraph) -> Iterator[set[str]]:
    """The groups of modules that import each other, directly or not (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    yield group


def _describe_cycle(graph: ImportGraph, group: set[str]) -> str:
    """One circle through the group, each step with the line that imports."""
    start = min(group)
    back = min(
        (
            chain
            for importer in graph.find_modules_that_directly_import(start)
            if importer in group
            for chain in [graph.find_shortest_chain(importer=start, imported=importer)]
            if chain is not None
        ),
        key=len,
    )
    circle = [*back, start]
    steps = []
    for importer, imported in itertools.pairwise(circle):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = (
            f" (line {details[0]['line_number']}: {details[0]['line_contents']})" if details else ""
        )
        steps.append(f"  {importer} -> {imported}{where}")
    return f"{len(group)} modules in a circle, for example:\n" + "\n".join(steps)


def _chains(graph: ImportGraph, importer: str, forbidden: list[str]) -> list[str]:
    """A shortest import chain from ``importer`` into each forbidden package that it reaches."""
    found = []
    for target in forbidden:
        if target not in graph.modules:
            continue
        chain = graph.find_shortest_chain(importer=importer, imported=target, as_packages=True)
        if chain is not None:
            found.append(" -> ".join(chain))
    return found


def test_the_graph_counts_imports_in_functions_and_type_checking_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the other tests rely on: an import that only a function or the type checker runs
    is an edge of the graph like a module-level one."""
    package = tmp_path / "layering_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("")
    (package / "high.py").write_text("")
    (package / "lazy.py").write_text("def f():\n    from layering_probe import high\n")
    (package / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from layering_probe import low\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = grimp.build_graph("layering_probe", exclude_type_checking_imports=False, cache_dir=None)
    assert probe.direct_import_exists(
        importer="layering_probe.lazy", imported="layering_probe.high"
    )
    assert probe.direct_import_exists(
        importer="layering_probe.typed", imported="layering_probe.low"
    )


def test_no_import_cycles(graph: ImportGraph) -> None:
    cycles = [_describe_cycle(graph, group) for group in _strongly_connected(graph)]
    assert not cycles, "import circles (break each by moving code down a layer):\n" + "\n".join(
        cycles
    )


def test_schemes_import_nothing_above_them(graph: ImportGraph) -> None:
    """A scheme is given what it needs (its backend instance); it never looks anything up in the
    registry, and never reaches the file layer, the model API, the workflows or the CLI."""
    above = ["io", "registry", "config", "nn", "workflow", "cli"]
    found = _chains(graph, "hennframework.schemes", [f"hennframework.{p}" for p in above])
    assert not found, "hennframework.schemes reaches a layer above it:\n" + "\n".join(found)


def test_the_plugin_face_imports_only_the_contract(graph: ImportGraph) -> None:
    """What a plugin imports from hennframework.plugin pulls in nothing above the contract, so
    a plugin that imports only from there cannot form an import circle with hennframework."""
    above = ["io", "registry", "config", "nn", "workflow", "cli", "schemes"]
    found = _chains(graph, "hennframework.plugin", [f"hennframework.{p}" for p in above])
    assert not found, "hennframework.plugin reaches a layer above the contract:\n" + "\n".join(
        found
    )


def test_nn_imports_nothing_above_it(graph: ImportGraph) -> None:
    """The model API is written against the tensor protocol: it needs no file layer, registry,
    workflow, CLI or front end (those import it, not the other way round)."""
    above = ["io", "workflow", "cli", "registry", "demos", "federated", "sklearn"]
    found = _chains(graph, "hennframework.nn", [f"hennframework.{p}" for p in above])
    assert not found, "hennframework.nn reaches a layer above it:\n" + "\n".join(found)
