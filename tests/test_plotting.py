"""The book's figure style and tables: what a reader of the page gets from them."""

from __future__ import annotations

import io
import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402

from sphere_regimes.plotting import style  # noqa: E402
from sphere_regimes.table import Table, per_seed, scientific  # noqa: E402


def test_labels_of_crowded_points_never_overlap():
    style.set_style()
    fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3))
    points = [(1e-3, 0.2), (1e-3, 0.2), (1.1e-3, 0.21), (1.2e-3, 0.2), (5e-3, 0.5), (5e-3, 0.5)]
    ax.plot(*zip(*points), "o")
    ax.set_xscale("log")
    labels = style.label_points(ax, points, [f"{k}/0.001" for k in range(len(points))])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(label, renderer) for label in labels]
    assert not [(a, b) for a, b in itertools.combinations(range(len(boxes)), 2) if boxes[a].overlaps(boxes[b])]
    assert any(label.arrow_patch.get_visible() for label in labels)  # a moved label keeps a leader line
    plt.close(fig)


def test_the_glued_png_records_its_smallest_font_and_dpi():
    style.set_style()
    fig, ax = plt.subplots(figsize=style.FIGSIZE)
    ax.plot([1, 2], [3, 4], label="a line")
    ax.legend()
    image = Image.open(io.BytesIO(style.figure_png(fig)))
    assert {k: image.text[k] for k in ("min_font_pt", "dpi")} == {"min_font_pt": f"{style.SMALLEST_FONT_PT:g}",
                                                                  "dpi": str(style.DPI)}
    ax.text(1.5, 3.5, "tiny", fontsize=5)
    assert Image.open(io.BytesIO(style.figure_png(fig))).text["min_font_pt"] == "5"
    plt.close(fig)


def test_a_column_figure_renders_its_smallest_font_at_9_px_or_more():
    """At the book's column (about 690 px in a 1280-px window), s points in a w-inch figure render at
    s / 72 x 690 / w px; full-width figures get about 940 px."""
    assert style.SMALLEST_FONT_PT / 72 * 690 / style.COLUMN_WIDTH >= 9
    assert style.SMALLEST_FONT_PT / 72 * 940 / style.FULL_WIDTH >= 9


def test_elr_colours_are_ordered_and_the_same_palette_everywhere():
    colors = style.elr_colors([1e-2, 1e-4, 1e-3])
    assert list(colors) == [1e-4, 1e-3, 1e-2]
    lightness = [np.mean(c[:3]) for c in colors.values()]
    assert lightness == sorted(lightness, reverse=True)  # light (small ELR) to dark (large ELR)
    assert list(colors.values()) == style.ordered_colors(3)


def test_tables_read_as_the_book_shows_them():
    assert [scientific(v) for v in (1e-4, 0.00316228, 0.0141421, 0.1, float("nan"))] == \
        ["1e-4", "3.2e-3", "1.4e-2", "1e-1", "–"]
    assert per_seed([1, 1, 2]) == "1 1 2"
    frame = pd.DataFrame({"regimes": ["1 1 1", "2 2 3"], "loss": [0.0384, np.nan]},
                         index=pd.Index([1e-4, 2e-3], name="elr"))
    shown = Table(frame, {"elr": scientific, "loss": ".3g"}, headings={"elr": "ELR", "loss": "loss (nats)"})
    text = shown._repr_html_()
    assert all(s in text for s in ("1e-4", "2e-3", "1 1 1", "0.0384", "loss (nats)", ">ELR<", "–"))
    assert "nan" not in text and "0.000100" not in text
    assert frame.index.name == "elr" and list(frame.columns) == ["regimes", "loss"]  # the frame keeps its names
    assert Table(frame.iloc[:0], headings={"loss": "loss (nats)"})._repr_html_() == ""  # no rows: no bare headings
