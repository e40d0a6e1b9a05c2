"""What ``make`` needs to rerun a chapter's notebook only when its own inputs change.

A notebook's inputs are

1. the parameters that the preset gives its chapter and every chapter whose module its chapter imports
   (chapters 03 and 04 read chapter 02's runs under chapter 02's parameters);
2. the state of those chapters' planned runs in the preset's store: each run's ``status.json`` (its status,
   epochs and the hash of its metrics), ``missing`` for a run the store lacks;
3. the library files it runs: its chapter module, its figure module (``plotting/<same name>.py``) and
   :mod:`sphere_regimes.book`, with every module of the package that they import, found by reading their
   ``import`` statements. The ``__init__`` files of :mod:`sphere_regimes.chapters` and
   :mod:`sphere_regimes.plotting` import every chapter's modules to re-export them; those imports do not
   count, since a notebook runs only its own chapter's code.

:func:`write_inputs` writes ``NOTEBOOK.params.yaml`` (papermill's parameters), ``NOTEBOOK.inputs`` (1 and 2)
and ``NOTEBOOK.d`` (3, a make rule) into the notebooks' build folder, each only when its content changes: its
time stamp moves only then, and make reruns the notebook only then
(``python -m sphere_regimes.chapters inputs PRESET NOTEBOOK DIR``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import ModuleType

import yaml

from .. import presets
from ..store import RunStore
from . import CHAPTERS, chapter

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PACKAGE = PACKAGE_DIR.name
RE_EXPORTING = (f"{PACKAGE}.chapters", f"{PACKAGE}.plotting")
"""Packages whose ``__init__`` imports every chapter's module only to re-export it."""


def module_path(name: str) -> Path | None:
    """The file of module ``name`` of the package (``sphere_regimes.x.y``), or None outside it."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(name: str) -> set[str]:
    """The modules of the package that module ``name`` imports (``import``/``from`` statements, relative or
    absolute, including ``from package import submodule``)."""
    path = module_path(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parent = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join(parent + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module_path(module) is not None}


def _figure_module(module: ModuleType) -> str:
    return f"{PACKAGE}.plotting.{module.__name__.rpartition('.')[2]}"


def library_modules(notebook: str) -> set[str]:
    """The package modules that chapter ``notebook`` runs (see the module's docstring, point 3)."""
    module = chapter(notebook)
    skipped = {m.__name__ for m in CHAPTERS.values()} | {_figure_module(m) for m in CHAPTERS.values()}
    todo = [name for name in (module.__name__, _figure_module(module), f"{PACKAGE}.book", *RE_EXPORTING)
            if module_path(name) is not None]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        imports = imported_modules(name)
        todo += sorted(imports - skipped if name in RE_EXPORTING else imports)
    return seen


def used_chapters(notebook: str) -> list[str]:
    """``notebook`` and the chapters whose modules its chapter imports, in book order."""
    modules = library_modules(notebook)
    return [name for name, module in CHAPTERS.items() if name == notebook or module.__name__ in modules]


def run_states(preset: str, notebook: str, store: RunStore) -> dict[str, object]:
    """Each planned run of ``notebook``'s chapter: its ``status.json`` or ``missing`` (a chapter without runs: none)."""
    module = chapter(notebook)
    if not hasattr(module, "plan"):
        return {}
    states: dict[str, object] = {}
    for config in module.plan(module.Params.from_preset(preset), store):
        status = store.root / config.run_id / "status.json"
        states[config.run_id] = json.loads(status.read_text()) if status.is_file() else "missing"
    return states


def inputs(preset: str, notebook: str, store: RunStore | None = None) -> dict[str, object]:
    """Points 1 and 2 of the module's docstring, for every chapter ``notebook`` uses."""
    store = store if store is not None else presets.preset_store(preset)
    return {name: {"params": chapter(name).Params.from_preset(preset).as_notebook(),
                   "runs": run_states(preset, name, store)} for name in used_chapters(notebook)}


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it holds it already (its time stamp then stays); True if written."""
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def write_inputs(preset: str, notebook: str, folder: Path) -> list[Path]:
    """Write the notebook's parameters, inputs and library rule into ``folder`` where they changed; the
    files written."""
    folder.mkdir(parents=True, exist_ok=True)
    executed = folder / f"{notebook}.ipynb"
    files = sorted(str(module_path(name).relative_to(PACKAGE_DIR.parent.parent)) for name in library_modules(notebook))
    contents = {
        folder / f"{notebook}.params.yaml": yaml.safe_dump(chapter(notebook).Params.from_preset(preset).as_notebook(),
                                                           sort_keys=True),
        folder / f"{notebook}.inputs": yaml.safe_dump(inputs(preset, notebook), sort_keys=True),
        folder / f"{notebook}.d": f"{executed}: " + " ".join(files) + "\n" + "".join(f"{f}:\n" for f in files),
    }
    return [path for path, text in contents.items() if write_if_changed(path, text)]
