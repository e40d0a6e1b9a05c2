"""Presets and chapter parameters: unknown names and wrong types are refused in one line before any run,
and every notebook's parameters cell is its chapter's ``Params`` defaults."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from sphere_regimes import chapters, paths
from sphere_regimes.chapters import ParamsError
from sphere_regimes.presets import PresetError, load_preset

NOTEBOOKS = sorted(p.stem for p in (paths.REPO_ROOT / "notebooks").glob("[0-9]*.py"))
PRESETS = ("smoke", "cpu", "gpu", "paper")


def parameters_cell(notebook: str) -> dict:
    """Names and literal values of the notebook's cell tagged ``parameters`` (a flat list of assignments)."""
    text = (paths.REPO_ROOT / "notebooks" / f"{notebook}.py").read_text()
    cell = next(c.partition("\n")[2] for c in text.split("\n# %%")[1:] if "parameters" in c.partition("\n")[0])
    values = {}
    for node in ast.parse(cell).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{notebook}: `name = literal` lines only"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_every_notebook_is_a_chapter_module():
    assert NOTEBOOKS == sorted(chapters.CHAPTERS)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_parameters_cell_equals_the_chapters_params_defaults(notebook):
    defaults = chapters.chapter(notebook).Params().as_notebook()
    assert parameters_cell(notebook) == defaults


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_preset_gives_every_chapter_valid_parameters(preset, notebook):
    if notebook in load_preset(preset)["notebooks"]:
        assert chapters.params(preset, notebook).preset == preset


def test_every_notebook_opens_with_its_claim_and_runtime():
    for notebook in NOTEBOOKS:
        first_cell = (paths.REPO_ROOT / "notebooks" / f"{notebook}.py").read_text().split("# %%")[1]
        assert first_cell.startswith(" [markdown]") and "# " in first_cell and "untime" in first_cell, notebook


Params = chapters.tutorial.Params


@pytest.mark.parametrize("given,message", [
    ({"stpes": 3}, r"unknown parameter\(s\) \['stpes'\]"),
    ({"steps": 2.5}, "'steps' must be int"),
    ({"steps": "300"}, "'steps' must be int"),
    ({"elr": "1e-3"}, "'elr' must be float"),
    ({"steps": True}, "'steps' must be int"),
])
def test_params_reject_unknown_names_and_wrong_types_in_one_line(given, message):
    with pytest.raises(ParamsError, match=message) as caught:
        Params.from_mapping(given)
    assert "\n" not in str(caught.value)


def test_params_accept_ints_for_floats_and_lists_for_tuples():
    assert Params.from_mapping({"elr": 1, "steps": 10}).elr == 1.0
    three = chapters.three_regimes.Params.from_mapping({"elrs": [1, 0.5], "individual_elrs": []})
    assert three.elrs == (1.0, 0.5) and dataclasses.is_dataclass(three)
    with pytest.raises(ParamsError, match=r"'seeds\[1\]' must be int"):
        chapters.three_regimes.Params.from_mapping({"seeds": [0, "1"]})
    with pytest.raises(ParamsError, match="must be a list of 2 values"):
        chapters.conventional.Params.from_mapping({"af_pairs": [[0.1]]})


def test_a_preset_value_of_the_wrong_type_names_the_preset_file(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PRESETS_DIR", Path(tmp_path))
    (tmp_path / "mine.yaml").write_text("notebooks:\n  02_three_regimes: {epochs: many}\n")
    with pytest.raises(ParamsError, match=r"preset 'mine' \(.*mine.yaml\), notebook '02_three_regimes': parameter "
                                          "'epochs' must be int, got str 'many'"):
        chapters.params("mine", "02_three_regimes")


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
