"""Presets and notebook parameters: unknown names and wrong types are refused before any run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sphere_regimes import paths
from sphere_regimes.presets import (PresetError, check_params, declared_params, load_preset, notebook_params)

NOTEBOOKS = sorted(p.stem for p in (paths.REPO_ROOT / "notebooks").glob("[0-9]*.py"))
PRESETS = ("smoke", "cpu", "gpu", "paper")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_preset_gives_every_notebook_valid_parameters(preset, notebook):
    params = notebook_params(preset, notebook)
    assert params["preset"] == preset


def test_every_notebook_has_a_flat_parameters_cell_and_a_claim_first():
    for notebook in NOTEBOOKS:
        source = paths.REPO_ROOT / "notebooks" / f"{notebook}.py"
        declared = declared_params(source)
        assert "preset" in declared, notebook
        first_cell = source.read_text().split("# %%")[1]
        assert first_cell.startswith(" [markdown]") and "# " in first_cell and "untime" in first_cell, notebook


DECLARED = {"preset": "cpu", "elr": 1e-3, "steps": 300, "names": ["a"], "verbose": False}


@pytest.mark.parametrize("given,message", [
    ({"stpes": 3}, r"unknown parameter\(s\) \['stpes'\]"),
    ({"steps": 2.5}, "'steps' must be int"),
    ({"steps": "300"}, "'steps' must be int"),
    ({"elr": "1e-3"}, "'elr' must be float"),
    ({"verbose": 1}, "'verbose' must be bool"),
    ({"steps": True}, "'steps' must be int"),
    ({"names": [1, 2]}, "'names' must be list"),
])
def test_check_params_rejects_unknown_names_and_wrong_types(given, message):
    with pytest.raises(PresetError, match=message):
        check_params(DECLARED, given)


def test_check_params_accepts_ints_for_floats():
    check_params(DECLARED, {"elr": 1, "steps": 10, "names": ["b", "c"], "verbose": True})


def test_unknown_preset_and_bad_yaml(tmp_path, monkeypatch):
    with pytest.raises(PresetError, match="unknown preset 'huge'"):
        load_preset("huge")
    monkeypatch.setattr(paths, "PRESETS_DIR", Path(tmp_path))
    (tmp_path / "broken.yaml").write_text("notebooks: [unclosed\n")
    with pytest.raises(PresetError, match="broken.yaml is not valid YAML at line 2, column 1: ") as caught:
        load_preset("broken")
    assert "\n" not in str(caught.value)  # one line, not PyYAML's multi-line report
    (tmp_path / "odd.yaml").write_text("notebook: {}\n")
    with pytest.raises(PresetError, match="unknown top-level key"):
        load_preset("odd")
