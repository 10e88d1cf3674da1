"""initlab.modelinit has no import cycles (function-level imports included), and nothing inside
it imports the compatibility module ``walk``."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "initlab" / "modelinit"


def _graph() -> dict[str, set[str]]:
    mods = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m in mods:
        tree = ast.parse((PKG / f"{m}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    target = node.module.split(".")[0]
                    if target in mods:
                        graph[m].add(target)
                else:
                    graph[m].update(a.name for a in node.names if a.name in mods)
    return graph


def test_no_import_cycles_inside_modelinit():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_nothing_inside_modelinit_imports_walk():
    graph = _graph()
    assert [m for m, deps in graph.items() if "walk" in deps] == []
    assert len(graph) >= 10 and max(len((PKG / f"{m}.py").read_text().splitlines())
                                    for m in graph) < 600
