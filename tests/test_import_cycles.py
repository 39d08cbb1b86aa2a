"""No import cycles in ``forecaster``: the import graph (grimp, the library under import-linter; imports inside
functions included, imports under ``if TYPE_CHECKING:`` left out since they never run) has no strongly connected
component of more than one module. The checker itself is shown to find a cycle in a small package built here."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest


def cycles(package: str) -> list[list[str]]:
    """The import cycles of ``package``: strongly connected components of > 1 module (Tarjan, iterative)."""
    graph = grimp.build_graph(package, include_external_packages=False, exclude_type_checking_imports=True)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root, targets in edges.items():
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(targets))]
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
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_forecaster_has_no_import_cycle() -> None:
    assert cycles("forecaster") == []


@pytest.fixture
def cyclic_package(tmp_path: Path) -> Iterator[str]:
    """``cyc``: ``a`` imports ``b`` inside a function, ``b`` imports ``a`` at the top; ``c`` imports ``a`` only
    under TYPE_CHECKING (no cycle with it)."""
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyc import b\n    return b\n")
    (pkg / "b.py").write_text("from cyc import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyc import a\n")
    (pkg / "d.py").write_text("from cyc import c\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "cyc"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "cyc" or m.startswith("cyc.")]:
            del sys.modules[name]


def test_the_checker_finds_a_cycle_through_a_function_level_import(cyclic_package: str) -> None:
    assert cycles(cyclic_package) == [["cyc.a", "cyc.b"]]
