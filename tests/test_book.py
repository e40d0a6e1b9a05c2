"""The rendered book, seen as a reader sees it: built with the smoke preset (the ``smoke_book`` fixture of
conftest.py, from the notebooks papermill executed once), opened in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from sphere_regimes import paths
from sphere_regimes.report import toc_for

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
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S))
    assert not re.search(r"\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$", text), "raw $...$ math left in the page"
    assert "\\(" not in text and "\\[" not in text, "unrendered math delimiters left in the page"
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
    assert files == ["chapters/01_toy_theory", "chapters/02_three_regimes", "differences", "reproducibility"]
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
