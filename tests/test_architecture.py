"""The shape of the code: no import cycle in src/, a science layer that knows no run, and chapter notebooks
that hold narrative, parameters and a few library calls (no functions, loops or comprehensions)."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

from sphere_regimes import paths

SRC = paths.REPO_ROOT / "src" / "sphere_regimes"
SCIENCE = ("models", "optim", "toy", "metrics")
"""Modules of the science layer: they know no run, file or store."""
RUN_LAYER = {"config", "engine", "store", "factories", "plans", "chapters", "sweep", "presets"}
CHAPTER_NOTEBOOKS = sorted(p for p in (paths.REPO_ROOT / "notebooks").glob("0*.py"))  # the tutorial (90) is exempt


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("sphere_regimes", *parts)).removesuffix(".__init__")


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The package modules that ``name`` imports at run time (imports under ``if TYPE_CHECKING`` excluded)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                for n in ast.walk(node)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.level or id(node) in checking:
            continue
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
        submodules = {f"{target}.{a.name}" for a in node.names} & set(MODULES)
        found |= submodules or ({target} & set(MODULES))
    return found - {name}


def test_the_import_graph_has_no_cycle():
    graph = {name: _imports(name) for name in MODULES}
    # a package's __init__ re-exporting its submodules is no cycle: drop edges from a module to its parents
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for target in graph[name]:
            assert state.get(target) != 1, "import cycle: " + " -> ".join(stack[stack.index(target):] + [target]) \
                if target in stack else f"import cycle through {target}"
            if target not in state:
                visit(target, stack + [target])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("module", SCIENCE)
def test_the_science_layer_knows_no_run(module):
    imported = {name.split(".")[1] for name in _imports(f"sphere_regimes.{module}")}
    assert not imported & RUN_LAYER, f"{module} imports {sorted(imported & RUN_LAYER)}"


@pytest.mark.parametrize("notebook", CHAPTER_NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_notebook_holds_no_function_loop_or_comprehension(notebook):
    logic = (ast.FunctionDef, ast.Lambda, ast.For, ast.While, ast.ListComp, ast.DictComp, ast.SetComp,
             ast.GeneratorExp, ast.ClassDef)
    for cell in jupytext.read(notebook).cells:
        if cell.cell_type == "code":
            found = [type(n).__name__ for n in ast.walk(ast.parse(cell.source)) if isinstance(n, logic)]
            assert not found, f"{notebook.name}: a code cell holds {found}:\n{cell.source}"
