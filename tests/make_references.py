"""Copy executed smoke-preset notebooks into nbval references (``make nbval-refresh``).

Only the outputs that nbval checks (cells whose first line is ``# NBVAL_CHECK_OUTPUT``) are kept,
so the references stay small and diff well; every other output is cleared.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"


def make_reference(source: Path, target: Path) -> None:
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if not cell.source.lstrip().startswith(MARK):
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(notebook, target)


def main(source_dir: str, target_dir: str) -> None:
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(Path(source_dir).glob("*.ipynb")):
        if "." in source.stem:  # build intermediates: NAME.source.ipynb, NAME.partial.ipynb
            continue
        make_reference(source, target / source.name)
        print(f"reference: {target / source.name}")


if __name__ == "__main__":
    main(*sys.argv[1:])
