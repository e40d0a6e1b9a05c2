"""Presets and notebook parameters.

A preset (``presets/<name>.yaml``) sets the parameters of every notebook for one scale of the
reproduction (``smoke``: seconds, for CI; ``cpu``: the real reproduction on 2 CPU cores;
``gpu``: the paper's scale on Fashion-MNIST; ``paper``: the paper's setting on CIFAR-10)::

    description: what this preset is for
    store: committed  # optional: read and extend results/ (default: its own store, _work/PRESET/results)
    earlier_edition: cpu-first-edition  # optional: the chapters compare their verdicts with this preset's
    notebooks:
      01_toy_theory:
        n_iterations: 500

Each chapter declares its parameters as a frozen ``Params`` dataclass in its module of
:mod:`sphere_regimes.chapters` (the notebook's ``parameters`` cell repeats them); the preset may only
override names declared there, with values of the declared type, which ``Params.from_preset`` checks
before papermill runs anything. Every notebook also receives ``preset`` (the preset's name).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .store import RunStore


class PresetError(ValueError):
    """A preset names an unknown notebook or parameter, or gives a value of the wrong type."""


STORES = {"own": "its own store, _work/PRESET/results", "committed": "the committed store results/ (run ids are "
          "content hashes: runs it holds are reused, the missing ones are added to it)"}
"""What a preset's ``store:`` key may say (default ``own``); ``presets/cpu.yaml`` says ``committed``."""


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
    unknown = sorted(set(preset) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise PresetError(f"{path}: unknown top-level key(s) {unknown}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    store = preset.get("store", "own")
    if store not in STORES:
        raise PresetError(f"{path}: store must be one of {list(STORES)}, got {store!r}")
    earlier = preset.get("earlier_edition", "")
    if earlier and (earlier == name or not (paths.PRESETS_DIR / f"{earlier}.yaml").is_file()):
        raise PresetError(f"{path}: earlier_edition must name another preset of {paths.PRESETS_DIR}, got {earlier!r}")
    notebooks = preset.get("notebooks") or {}
    if not isinstance(notebooks, dict) or not all(isinstance(v, dict) for v in notebooks.values()):
        raise PresetError(f"{path}: 'notebooks' must map notebook names to parameter mappings")
    known = sorted(p.stem for p in (paths.REPO_ROOT / "notebooks").glob("*.py"))
    unknown = sorted(set(notebooks) - set(known))
    if unknown:
        raise PresetError(f"{path}: unknown notebook(s) {unknown}; the notebooks are {known}")
    return {"description": preset.get("description", ""), "notebooks": notebooks, "store": store,
            "earlier_edition": earlier}


TOP_LEVEL_KEYS = ("description", "store", "earlier_edition", "notebooks")
"""What a preset may say: what it is for, its result store (:data:`STORES`), the preset of the earlier edition of
the same reproduction whose verdicts its chapters compare with (optional), and each notebook's parameters."""


def where(preset: str, notebook: str) -> str:
    """``preset 'NAME' (PATH), notebook 'NOTEBOOK'``: the place to fix a bad parameter."""
    return f"preset {preset!r} ({preset_path(preset)}), notebook {notebook!r}"


def preset_store(preset: str) -> RunStore:
    """The result store of ``preset``, the one place that decides it: ``SPHERE_REGIMES_RESULTS`` when set,
    else ``results/`` for a preset that says ``store: committed`` (the ``cpu`` preset, and a copy of it with
    one parameter changed, which reuses every committed run it shares) and ``_work/PRESET/results`` for the
    others."""
    if os.environ.get("SPHERE_REGIMES_RESULTS"):
        return RunStore(os.environ["SPHERE_REGIMES_RESULTS"])
    committed = load_preset(preset)["store"] == "committed"
    return RunStore(paths.RESULTS_DIR if committed else paths.WORK_DIR / preset / "results")
