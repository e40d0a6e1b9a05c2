"""What a chapter notebook hands to the book: its findings and figures, glued under their names.

A chapter notebook is narrative, its parameters cell and three calls::

    findings = chapters.three_regimes.analyse(chapters.three_regimes.Params.from_namespace(globals()))
    book.glue_all(findings, plotting.three_regimes.figures)

after which the Markdown cites ``{glue:text}`name``` (numbers), ``{glue:md}`name``` (sentences) and
``{glue:figure}`` names, and shows ``findings.tables[...]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .chapters.base import Findings
from .plotting import set_style


def glue_all(findings: Findings, figures: Callable[[Findings], Mapping[str, Figure]]) -> None:
    """Glue every value of ``findings`` (a string as Markdown, anything else as it is), every figure that
    ``figures(findings)`` draws in the book's style (each then closed), the preset's name as
    ``preset_md`` and the page's read time as ``runtime_s``."""
    from IPython.display import Markdown
    from myst_nb import glue

    set_style()
    for name, value in findings.values.items():
        glue(name, Markdown(value) if isinstance(value, str) else value, display=False)
    for name, figure in figures(findings).items():
        glue(name, figure, display=False)
        plt.close(figure)
    glue("preset_md", Markdown(f"`{findings.params.preset}`"), display=False)
    glue("runtime_s", time.perf_counter() - findings.started, display=False)
