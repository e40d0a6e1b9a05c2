"""The committed references (tests/notebooks) are the current notebooks run with the smoke preset, and
today's execution of the smoke notebooks prints what they printed.

The notebooks are executed once per test session, by papermill (the ``smoke_notebooks`` fixture), and
the book is rendered from those same executions; the check of their outputs is nbval's ``--nbval-lax``
check done on papermill's notebooks: every cell marked ``# NBVAL_CHECK_OUTPUT`` prints the reference's
text, after the regexes of tests/nbval_sanitize.cfg (nbval's format) on both sides.
"""

from __future__ import annotations

import configparser
import re

import jupytext
import nbformat
import pytest

from sphere_regimes import chapters, paths

from make_references import MARK  # tests/make_references.py

SOURCES = sorted((paths.REPO_ROOT / "notebooks").glob("[0-9]*.py"))
REFERENCES = paths.REPO_ROOT / "tests" / "notebooks"
SANITIZE = configparser.ConfigParser(interpolation=None)
SANITIZE.read(paths.REPO_ROOT / "tests" / "nbval_sanitize.cfg")


def _code_cells(notebook) -> list[str]:
    return [c.source for c in notebook.cells
            if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    return output.get("data", {}).get("text/plain", "")


def _checked_outputs(notebook) -> list[str]:
    """The sanitized text printed by each cell marked ``# NBVAL_CHECK_OUTPUT``, in order."""
    texts = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith(MARK):
            text = "".join(_text(output) for output in cell.outputs)
            for section in SANITIZE.sections():
                text = re.sub(SANITIZE[section]["regex"], SANITIZE[section]["replace"], text)
            texts.append(text)
    return texts


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


@pytest.mark.book
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_smoke_execution_prints_the_reference(source, smoke_notebooks):
    reference_path = REFERENCES / f"{source.stem}.ipynb"
    executed = nbformat.read(smoke_notebooks / f"{source.stem}.ipynb", as_version=4)
    reference = nbformat.read(reference_path, as_version=4)
    assert _checked_outputs(reference), f"{reference_path.name} has no cell marked {MARK}"
    assert _checked_outputs(executed) == _checked_outputs(reference), \
        f"the smoke execution of {source.name} prints other checked outputs than {reference_path.name}"
