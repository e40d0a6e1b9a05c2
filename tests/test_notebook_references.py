"""The committed nbval references (tests/notebooks) are the current notebooks run with the smoke preset."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from sphere_regimes import paths
from sphere_regimes import chapters

SOURCES = sorted((paths.REPO_ROOT / "notebooks").glob("[0-9]*.py"))
REFERENCES = paths.REPO_ROOT / "tests" / "notebooks"


def _code_cells(notebook) -> list[str]:
    return [c.source for c in notebook.cells
            if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_reference_is_fresh(source):
    reference = REFERENCES / f"{source.stem}.ipynb"
    assert reference.is_file(), f"no nbval reference for {source.name}: run `make nbval-refresh`"
    executed = nbformat.read(reference, as_version=4)
    assert _code_cells(executed) == _code_cells(jupytext.read(source)), \
        f"{reference.name} is stale: the notebook source changed; run `make nbval-refresh`"
    assert executed.metadata.papermill.parameters == chapters.params("smoke", source.stem).as_notebook(), \
        f"{reference.name} was run with other parameters than presets/smoke.yaml gives; run `make nbval-refresh`"


def test_no_orphan_references():
    stems = {s.stem for s in SOURCES}
    assert {r.stem for r in REFERENCES.glob("*.ipynb")} <= stems
