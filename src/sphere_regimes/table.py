"""A table as the book shows it: a frame with its columns' display formats and headings.

A format is a format spec (``".3g"``) or a function of the value; :func:`scientific` writes ELRs and
:func:`per_seed` a label per seed. A missing value shows as ``na_rep`` (never ``nan``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

Format = str | Callable[[object], str]


def scientific(value: float) -> str:
    """An ELR (or any positive rate) in scientific notation with two significant digits: ``1e-4``,
    ``3.2e-3``; a missing value as ``–``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    mantissa, exponent = f"{float(value):.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def per_seed(labels: Iterable) -> str:
    """One label per seed, separated by spaces: ``1 1 2``."""
    return " ".join(str(label) for label in labels)


@dataclass(frozen=True)
class Table:
    """A table a chapter shows: the frame, its columns' (and its index's) display formats, the headings
    readers see (column or index name -> heading with its unit; the frame keeps its names) and whether the
    index is shown."""

    frame: pd.DataFrame
    formats: Mapping[str, Format] = field(default_factory=dict)
    show_index: bool = True
    na_rep: str = "–"
    headings: Mapping[str, str] = field(default_factory=dict)

    def style(self):
        """The frame as a pandas ``Styler`` with the formats and headings."""
        index = self.frame.index.name
        frame = self.frame.rename_axis(self.headings.get(index, index))
        styler = frame.style.format({k: _formatter(v) for k, v in self.formats.items() if k in frame},
                                    na_rep=self.na_rep)
        if index in self.formats:
            styler = styler.format_index(_formatter(self.formats[index]), axis=0, na_rep=self.na_rep)
        if self.headings:
            styler = styler.relabel_index([self.headings.get(c, c) for c in frame.columns], axis=1)
        return styler if self.show_index else styler.hide(axis="index")

    def _repr_html_(self) -> str:
        """The styled table; nothing for a table without rows (the prose around it says why it has none)."""
        return self.style().to_html() if len(self.frame) else ""


def _formatter(fmt: Format) -> Callable[[object], str] | str:
    return fmt if callable(fmt) else f"{{:{fmt}}}"


__all__ = ["Table", "per_seed", "scientific"]
