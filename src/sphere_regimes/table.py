"""A table as the book shows it: a frame with its columns' display formats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Table:
    """A table a chapter shows: the frame, its columns' display formats and whether the index is shown."""

    frame: pd.DataFrame
    formats: Mapping[str, str] = field(default_factory=dict)
    show_index: bool = True
    na_rep: str = "–"

    def style(self):
        """The frame as a pandas ``Styler`` with the formats."""
        styler = self.frame.style.format({k: f"{{:{v}}}" for k, v in self.formats.items() if k in self.frame},
                                         na_rep=self.na_rep)
        return styler if self.show_index else styler.hide(axis="index")

    def _repr_html_(self) -> str:
        return self.style().to_html()


__all__ = ["Table"]
