"""The rendered book, seen as a reader sees it: built with the smoke preset (the ``smoke_book`` fixture of
conftest.py, from the notebooks papermill executed once), opened in headless Chromium.

Every page is measured in the browser at 1280 px (tests/reader_view.js, appended to a copy of the page:
its visible text, the column's width, and each figure's rendered width, number, link and alt text), and
the check functions below list what a reader would see wrong: raw math, plumbing text, figures narrower
than the column, fonts under 9 px, unlinked figures, figure numbers that are not the chapter's. Each
check is also shown to fail on a page broken on purpose (:func:`test_the_checks_catch_a_broken_page`).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sphere_regimes import paths
from sphere_regimes.report import toc_for

READER_VIEW = Path(__file__).with_name("reader_view.js")
WINDOW = "--window-size=1280,1600"
MIN_FONT_PX = 9.0  # the smallest rendered font a reader can read
MIN_COLUMN_SHARE = 0.9  # a figure narrower than this share of the column must be a full-width one
RAW_MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\[")  # $...$ (with or without a backslash), \( or \[ left as text
PLUMBING = re.compile(r"glue\(|NBVAL|<IPython\.[\w.]+ object>")
LANDING_IDS = ("claims-scoreboard", "headline-figure")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=15000"]


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (`make browser` installs it on Debian)")
    return binary


def _browse(chromium: str, page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.mark.book
def test_book_has_every_page(smoke_book):
    for page in ("index.html", "chapters/01_toy_theory.html", "chapters/02_three_regimes.html",
                 "chapters/90_sphere_sgd_on_your_model.html",
                 "differences.html", "reproducibility.html"):
        assert (smoke_book / page).is_file(), page
    assert (smoke_book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()  # offline math
    html = (smoke_book / "chapters" / "01_toy_theory.html").read_text()
    assert "cdn.jsdelivr.net" not in html and "mathjax/tex-mml-chtml.js" in html


@pytest.mark.book
@pytest.mark.parametrize("page", ["chapters/01_toy_theory.html", "chapters/02_three_regimes.html", "index.html"])
def test_page_renders_math_and_figures_in_chromium(smoke_book, chromium, tmp_path, page):
    target = smoke_book / page
    dom = _browse(chromium, target, tmp_path, "--dump-dom").stdout
    assert "mjx-container" in dom, "MathJax did not typeset the page"
    if "chapters/" in page:
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
        assert images, "the chapter has no figure"
        assert all((target.parent / src).is_file() for src in images)
    shot = tmp_path / "page.png"
    _browse(chromium, target, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10 and (pixels < 200).mean() > 0.01, "the screenshot is blank"
    shutil.copy(shot, paths.REPO_ROOT / "_work" / "smoke" / f"screenshot-{target.stem}.png")


def test_the_table_of_contents_keeps_only_the_chapters_a_preset_executes():
    toc = yaml.safe_load((paths.REPO_ROOT / "book" / "_toc.yml").read_text())
    kept = toc_for(toc, {"01_toy_theory", "02_three_regimes"})
    files = [entry["file"] for entry in kept["chapters"]]
    assert files == ["chapters/01_toy_theory", "chapters/02_three_regimes", "differences", "reproducibility",
                     "references"]
    assert kept["root"] == toc["root"]
    every = {entry["file"].split("/", 1)[1] for entry in toc["chapters"] if entry["file"].startswith("chapters/")}
    assert toc_for(toc, every) == toc


def test_chapters_name_their_data_and_add_up_training_time(tmp_path, tiny_config):
    from sphere_regimes import run
    from sphere_regimes.chapters.base import core_hours, data_description
    from sphere_regimes.store import RunStore

    assert data_description("fashion_mnist", 10000) == "the first 10000 training images of Fashion-MNIST"
    assert data_description("fashion_mnist", None) == "all of Fashion-MNIST"
    store = RunStore(tmp_path)
    results = [run(tiny_config, store), run(tiny_config.replace(seed=1), store)]
    assert core_hours(results, store) == pytest.approx(
        sum(store.timing(r.config)["wall_seconds"] for r in results) / 3600)


# What a reader sees: the page measured in Chromium, and the checks on that measurement.

def reader_view(chromium: str, page: Path, tmp_path: Path) -> dict:
    """``page`` as tests/reader_view.js measures it in Chromium at 1280 px (a copy beside the page, so
    that its relative links still resolve)."""
    probe = page.with_name(f"_reader_view_{page.name}")
    probe.write_text(page.read_text().replace("</body>", f"<script>{READER_VIEW.read_text()}</script></body>"))
    try:
        dom = _browse(chromium, probe, tmp_path, "--dump-dom", WINDOW).stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="reader-view"[^>]*>(.*?)</pre>', dom, flags=re.S)
    assert found, f"the reader-view script did not run on {page.name}"
    return json.loads(html.unescape(found.group(1)))


def raw_math(view: dict) -> list[str]:
    """Math left as source in the prose (code blocks aside): ``$...$`` with or without a backslash, ``\\(``, ``\\[``."""
    return RAW_MATH.findall(view["prose"])


def plumbing(view: dict) -> list[str]:
    """Build machinery a reader sees: ``glue(`` calls, nbval markers and the repr of a glued object that a
    ``{glue:text}`` role printed instead of its text (``<IPython.core.display.Markdown object>``)."""
    return PLUMBING.findall(view["text"])


def rendered_font_px(figure: dict, folder: Path) -> float:
    """The smallest font of ``figure`` as rendered: its size in points (recorded in its PNG by
    ``sphere_regimes.plotting.style.figure_png``) x dpi / 72 x displayed width / natural width; 0 when
    the PNG does not record it."""
    info = Image.open(folder / figure["src"]).text
    if "min_font_pt" not in info or not figure["natural"]:
        return 0.0
    return float(info["min_font_pt"]) * float(info["dpi"]) / 72 * figure["width"] / figure["natural"]


def illegible_figures(view: dict, folder: Path) -> list[str]:
    """Figures narrower than :data:`MIN_COLUMN_SHARE` of the column (unless full-width), with a rendered font
    under :data:`MIN_FONT_PX`, without a link to their full-size image, or without alt text."""
    problems = []
    for figure in view["figures"]:
        name = figure["id"] or figure["src"]
        if not figure["full"] and figure["width"] < MIN_COLUMN_SHARE * view["column"]:
            problems.append(f"{name}: {figure['width']:.0f} px wide in a {view['column']:.0f}-px column")
        if (font := rendered_font_px(figure, folder)) < MIN_FONT_PX:
            problems.append(f"{name}: smallest font {font:.1f} px")
        if not (figure["link"] or "").endswith(".png"):
            problems.append(f"{name}: no link to its full-size image")
        if len(figure["alt"]) < 20:
            problems.append(f"{name}: no alt text")
    return problems


def misnumbered_figures(view: dict) -> list[str]:
    """Figure numbers other than "Fig. C.1", "Fig. C.2", ... in order, C the page's chapter number
    (the numbered table of contents); on a page without a chapter number, any figure number."""
    chapter = (view["chapter"] or "").rstrip(".")
    expected = [f"Fig. {chapter}.{k}" for k in range(1, len(view["figures"]) + 1)] if chapter else []
    numbers = [figure["number"] for figure in view["figures"]]
    if not chapter:  # the landing page: its figures carry no number
        return [] if not any(numbers) else [f"{numbers} instead of no numbers"]
    return [] if numbers == expected else [f"{numbers} instead of {expected}"]


def missing_landing_elements(view: dict) -> list[str]:
    return [element for element in LANDING_IDS if not view["shown"][element]]


def _pages(book: Path) -> list[Path]:
    """The book's pages (index.html only redirects to the root page; the index and search pages are Sphinx's)."""
    return sorted(p for p in book.rglob("*.html") if not {"_static", "_sources", "_images"} & set(p.parts)
                  and p.name not in ("index.html", "genindex.html", "search.html"))


@pytest.mark.book
def test_every_page_shows_rendered_math_legible_figures_and_no_plumbing(smoke_book, chromium, tmp_path):
    problems = {}
    for page in _pages(smoke_book):
        view = reader_view(chromium, page, tmp_path)
        found = [*(f"raw math {m!r}" for m in raw_math(view)), *(f"plumbing {p!r}" for p in plumbing(view)),
                 *illegible_figures(view, page.parent), *misnumbered_figures(view)]
        if found:
            problems[str(page.relative_to(smoke_book))] = found
    assert not problems, problems


@pytest.mark.book
def test_the_landing_page_shows_the_scoreboard_and_its_figure(smoke_book, chromium, tmp_path):
    root = yaml.safe_load((paths.REPO_ROOT / "book" / "_toc.yml").read_text())["root"]
    assert not missing_landing_elements(reader_view(chromium, smoke_book / f"{root}.html", tmp_path))


BROKEN_PAGE = """<html><head><style>figure {{ margin: 0 }}</style></head><body>
<h1><span class="section-number">2. </span>A broken chapter</h1>
<article class="bd-article" style="width: 690px">
<p>Raw math: $T_1 + T_2$ and $\\alpha_i$ and \\(x\\).</p>
<p>glue("runtime_s", 3.0)</p><p># NBVAL_CHECK_OUTPUT</p><p>the &lt;IPython.core.display.Markdown object&gt; angle</p>
<pre>code may hold $PWD and $HOME</pre>
<figure id="good"><a href="good.png"><img src="good.png" alt="a figure that fills the column, legibly" style="width: 100%"></a>
<figcaption><span class="caption-number">Fig. 2.1 </span></figcaption></figure>
<figure id="narrow"><a href="good.png"><img src="good.png" alt="a figure much narrower than the column" style="width: 200px"></a>
<figcaption><span class="caption-number">Fig. 5 </span></figcaption></figure>
<figure id="tiny"><img src="tiny.png" style="width: 100%"></figure>
</article></body></html>"""


def test_the_checks_catch_a_broken_page(chromium, tmp_path):
    """Every check reports its defect on a page broken on purpose, and passes the one good figure."""
    book = tmp_path / "book"
    book.mkdir()
    good, tiny = PngInfo(), PngInfo()
    for key, value in (("min_font_pt", "8"), ("dpi", "150")):
        good.add_text(key, value)
    tiny.add_text("min_font_pt", "4")
    tiny.add_text("dpi", "150")
    Image.new("RGB", (1050, 300), "white").save(book / "good.png", pnginfo=good)  # 8 pt at 690/1050: 11 px
    Image.new("RGB", (1050, 300), "white").save(book / "tiny.png", pnginfo=tiny)  # 4 pt: 5.5 px
    page = book / "broken.html"
    page.write_text(BROKEN_PAGE.format())
    view = reader_view(chromium, page, tmp_path)
    assert raw_math(view) == ["$T_1 + T_2$", r"$\alpha_i$", r"\("]
    assert plumbing(view) == ["glue(", "NBVAL", "<IPython.core.display.Markdown object>"]
    problems = illegible_figures(view, book)
    assert not [p for p in problems if p.startswith("good")], problems
    assert any(p.startswith("narrow:") and "px wide" in p for p in problems), problems
    assert {"tiny: smallest font 5.5 px", "tiny: no link to its full-size image", "tiny: no alt text"} <= set(problems)
    assert misnumbered_figures(view) == ["['Fig. 2.1', 'Fig. 5', None] instead of ['Fig. 2.1', 'Fig. 2.2', 'Fig. 2.3']"]
    assert missing_landing_elements(view) == list(LANDING_IDS)
