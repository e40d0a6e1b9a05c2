"""Presets and notebook parameters.

A preset (``presets/<name>.yaml``) sets the parameters of every notebook for one scale of the
reproduction (``smoke``: seconds, for CI; ``cpu``: the real reproduction on 2 CPU cores;
``gpu``: the paper's scale on Fashion-MNIST; ``paper``: the paper's setting on CIFAR-10)::

    description: what this preset is for
    notebooks:
      01_toy_theory:
        n_iterations: 500

Each notebook declares its parameters in one flat cell tagged ``parameters``; the preset may only
override names declared there, with values of the declared type. :func:`check_params` enforces
that before papermill runs anything. Every notebook also receives ``preset`` (the preset's name).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any

import yaml

from . import paths

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", type(None): "None"}


class PresetError(ValueError):
    """A preset names an unknown notebook or parameter, or gives a value of the wrong type."""


def preset_path(name: str) -> Path:
    path = paths.PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in paths.PRESETS_DIR.glob("*.yaml"))
        raise PresetError(f"unknown preset {name!r}; known presets: {known} (in {paths.PRESETS_DIR})")
    return path


def load_preset(name: str) -> dict[str, Any]:
    """The preset's YAML as a dict, with its sections checked for shape."""
    path = preset_path(name)
    try:
        preset = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        raise PresetError(f"{path} is not valid YAML{position}: {problem}; fix the file") from None
    unknown = sorted(set(preset) - {"description", "notebooks"})
    if unknown:
        raise PresetError(f"{path}: unknown top-level key(s) {unknown}; allowed: description, notebooks")
    notebooks = preset.get("notebooks") or {}
    if not isinstance(notebooks, dict) or not all(isinstance(v, dict) for v in notebooks.values()):
        raise PresetError(f"{path}: 'notebooks' must map notebook names to parameter mappings")
    known = sorted(p.stem for p in (paths.REPO_ROOT / "notebooks").glob("*.py"))
    unknown = sorted(set(notebooks) - set(known))
    if unknown:
        raise PresetError(f"{path}: unknown notebook(s) {unknown}; the notebooks are {known}")
    return {"description": preset.get("description", ""), "notebooks": notebooks}


def where(preset: str, notebook: str) -> str:
    """``preset 'NAME' (PATH), notebook 'NOTEBOOK'``: the place to fix a bad parameter."""
    return f"preset {preset!r} ({preset_path(preset)}), notebook {notebook!r}"


def notebook_source(notebook: str) -> Path:
    path = paths.REPO_ROOT / "notebooks" / f"{notebook}.py"
    if not path.is_file():
        raise PresetError(f"unknown notebook {notebook!r} (no {path})")
    return path


def declared_params(source: Path) -> dict[str, Any]:
    """Names and default values of the ``parameters`` cell of a jupytext percent notebook."""
    cell = _parameters_cell(source.read_text(), source)
    declared: dict[str, Any] = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        else:
            raise PresetError(f"{source}: the parameters cell may only hold `name = literal` lines")
        try:
            declared[name] = ast.literal_eval(value)
        except ValueError:
            raise PresetError(f"{source}: parameter {name!r} must be a literal (number, string, list)") from None
    return declared


def _parameters_cell(text: str, source: Path) -> str:
    cells = text.split("\n# %%")
    for cell in cells[1:]:
        header, _, body = cell.partition("\n")
        if "parameters" in header and "tags" in header:
            return body
    raise PresetError(f"{source} has no cell tagged 'parameters' (`# %% tags=[\"parameters\"]`)")


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def check_params(declared: dict[str, Any], given: dict[str, Any], where: str = "preset") -> None:
    """Reject names not declared in the notebook and values whose type differs from the default.

    An int is accepted where a float is declared; a list must hold items of the default's item type.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise PresetError(f"{where}: unknown parameter(s) {unknown}; the notebook declares {sorted(declared)}")
    for name, value in given.items():
        default = declared[name]
        if not _same_type(default, value):
            raise PresetError(f"{where}: parameter {name!r} must be {_type_name(default)} like its default "
                              f"{default!r}, got {_type_name(value)} {value!r}")


def _same_type(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_same_type(default[0], v) for v in value))
    return type(default) is type(value)


def notebook_params(preset: str, notebook: str) -> dict[str, Any]:
    """The checked parameters that ``preset`` gives ``notebook`` (plus ``preset`` itself)."""
    declared = declared_params(notebook_source(notebook))
    given = dict(load_preset(preset)["notebooks"].get(notebook, {}))
    given.setdefault("preset", preset)
    check_params(declared, given, where=where(preset, notebook))
    return given


def resolved_params(preset: str, notebook: str) -> dict[str, Any]:
    """Every parameter of ``notebook`` as it runs under ``preset``: declared defaults, then overrides."""
    return {**declared_params(notebook_source(notebook)), **notebook_params(preset, notebook)}


def collect(namespace: dict[str, Any], notebook: str) -> dict[str, Any]:
    """The values of ``notebook``'s declared parameters in ``namespace`` (a notebook's ``globals()``),
    as run plans take them."""
    return {name: namespace[name] for name in declared_params(notebook_source(notebook))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the checked papermill parameters of a notebook as YAML.")
    parser.add_argument("preset")
    parser.add_argument("notebook")
    args = parser.parse_args(argv)
    try:
        print(yaml.safe_dump(notebook_params(args.preset, args.notebook), sort_keys=True), end="")
    except PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
