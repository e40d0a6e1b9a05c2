"""Plotting: one shared style (:mod:`.style`) and one figure module per chapter.

Every figure function returns its :class:`matplotlib.figure.Figure` (no ``plt.show``) and works with
the Agg backend; notebooks call them and hold no plotting code of their own.
"""

from . import conventional, fine_tuning, regime_map, style, three_regimes, toy
from .style import REGIME_COLORS, REGIME_NAMES, elr_colors, set_elr_axis, set_style, shade_regimes

__all__ = ["REGIME_COLORS", "REGIME_NAMES", "conventional", "elr_colors", "fine_tuning", "regime_map", "set_elr_axis", "set_style",
           "shade_regimes", "style", "three_regimes", "toy"]
