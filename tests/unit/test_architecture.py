"""The architecture holds because it is checked: the import-linter contracts in pyproject.toml (layers point down,
the synthetic world and the product code apart), no import cycle anywhere in src/tunelake, no module over 600
lines, and no probing of what an engine is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "tunelake"


def test_the_import_contracts_are_kept(requires):
    requires("importlinter", "pip install import-linter (make setup does)")
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()"], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "3 kept, 0 broken" in out.stdout


def _cycles(graph: object, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles(requires):
    """Between modules, lazy imports inside functions included (a package and its own submodules aside: a
    package's __init__ re-exporting what its modules define is not a cycle of concepts)."""
    grimp = requires("grimp", "installed with import-linter")
    sys.path.insert(0, str(REPO / "src"))
    graph = grimp.build_graph("tunelake", cache_dir=None)
    modules = {m for m in graph.modules if not m.endswith(".__init__")}
    packages = {m.rsplit(".", 1)[0] for m in modules}
    leaves = modules - packages  # modules that are files, not package faces
    cycles = _cycles(graph, leaves)
    assert cycles == [], cycles


def test_no_module_is_over_600_lines():
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 600}
    assert big == {}


def test_no_code_asks_what_an_engine_is():
    """The engine interface has every method callers need: nobody probes with hasattr(engine, …)."""
    probe = re.compile(r"hasattr\(\s*(self\.)?(engine|target|eng)\b")
    found = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if probe.search(line)]
    assert found == []


@pytest.mark.parametrize("layer", ["sources", "lake", "curate", "warehouse", "analytics"])
def test_nothing_below_the_cli_prints(layer):
    """Only cli/ formats for a terminal: the layers below return data and raise typed errors."""
    hits = [f"{p.relative_to(SRC)}:{i}" for p in (SRC / layer).rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"(^|\s)print\(|rich\.|typer\.", line)]
    assert hits == []
