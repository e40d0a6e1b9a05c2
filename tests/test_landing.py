"""The book's generated results pages and the book of any subset of chapters: the claims scoreboard and the
headline figure of the landing page, the pages' links for a partial preset, the per-notebook inputs that decide
which notebook reruns, and presets that read the committed store."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest
import yaml

from sphere_regimes import chapters, overview, paths, presets, report
from sphere_regimes.chapters import build
from sphere_regimes.chapters.__main__ import main as chapters_main
from sphere_regimes.chapters.three_regimes import PAPER_BRACKETS
from sphere_regimes.claims import Ledger, Verdict
from sphere_regimes.plotting.landing import plot_regime_map
from sphere_regimes.store import RunStore

matplotlib.use("Agg")

BOOK = paths.REPO_ROOT / "book"
TINY_TOY = {"init_seeds": [0], "n_iterations": 300, "etas_per_decade": 3, "zoom_etas_per_decade": 20,
            "comparison_noise_stds": []}
"""A toy chapter that simulates in about a second."""


@pytest.fixture
def preset_dir(tmp_path, monkeypatch) -> Path:
    """An empty presets folder in place of presets/, and no SPHERE_REGIMES_RESULTS."""
    folder = tmp_path / "presets"
    folder.mkdir()
    monkeypatch.setattr(paths, "PRESETS_DIR", folder)
    monkeypatch.delenv("SPHERE_REGIMES_RESULTS", raising=False)
    return folder


def _write_preset(folder: Path, name: str, **content) -> None:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"description": f"{name}, for a test", **content}))


def _ledger() -> Ledger:
    """Every claim of the book, chapter 01's measured (one held, one partly, one not held), the others untested."""
    specs = [spec for module in chapters.CHAPTERS.values() for spec in getattr(module, "CLAIMS", [])]
    verdicts = [Verdict.HELD, Verdict.PARTLY, Verdict.NOT_HELD]
    claims = [spec.measured(f"value_{i} |x| *y*", i, verdicts[i], "", "") if i < 3 else spec.untested("not run")
              for i, spec in enumerate(specs)]
    return Ledger("mine", claims)


def test_the_scoreboard_has_one_row_per_claim_its_counts_and_a_link_to_each_shown_claim():
    ledger = _ledger()
    text = overview.scoreboard(ledger, staged={"01_toy_theory"})
    assert f":name: {overview.SCOREBOARD_ID}" in text
    assert text.count("\n* - ") == len(ledger.claims) + 1  # the header row and one row per claim
    for verdict, n in ledger.counts().items():
        assert f"{overview.verdict_badge(Verdict(verdict))} **{n}**" in text
    toy_claim = ledger.claims[1]
    assert toy_claim.spec.chapter == "01_toy_theory" and toy_claim.spec.section
    assert f"<{toy_claim.spec.section}>`" in text
    assert text.count("not in this book") == sum(c.spec.chapter != "01_toy_theory" for c in ledger.claims)
    assert "value\\_0 \\|x\\| \\*y\\*" in text  # measured text is escaped, not read as markup


def test_md_escape_leaves_no_markup():
    assert overview.md_escape("a_b *c* |d| $e$ `f` [g](h) <i>") == \
        "a\\_b \\*c\\* \\|d\\| \\$e\\$ \\`f\\` \\[g\\](h) \\<i\\>"


def test_the_headline_figure_has_three_panels_with_the_regimes_and_the_paper_brackets():
    rows = [{"elr": elr, "seed": seed, "regime": regime, "train_loss": loss * (1 + seed / 10),
             "test_error": error, "effective_grad_norm": grad}
            for elr, regime, loss, error, grad in [(1e-4, 1, 1e-2, 0.15, 5.0), (1e-3, 1, 1e-3, 0.12, 1.0),
                                                    (1e-2, 2, 0.5, 0.3, 10.0), (1e-1, 3, 8.0, 0.9, 3e3)]
            for seed in (0, 1)]
    figure = plot_regime_map(pd.DataFrame(rows), {"train_loss": 12.0, "effective_grad_norm": 300.0}, 0.9,
                             PAPER_BRACKETS)
    assert len(figure.axes) == 3
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == ["1: convergence", "2: chaotic equilibrium", "3: divergence", "paper's boundaries (ELR brackets)"]


def test_links_to_chapters_a_preset_leaves_out_are_dropped():
    markdown = ("- {doc}`chapters/01_toy_theory`: kept\n  and its second line\n"
                "- {doc}`chapters/02_three_regimes`: dropped\n  with its second line\n"
                "- {doc}`differences`: kept\n\nSee {doc}`the regimes <chapters/02_three_regimes>`.\n")
    kept = report.unlink_unstaged(markdown, {"01_toy_theory"})
    assert kept == ("- {doc}`chapters/01_toy_theory`: kept\n  and its second line\n- {doc}`differences`: kept\n\n"
                    "See `notebooks/02_three_regimes.py`.\n")
    assert report.unlink_unstaged(markdown, {"01_toy_theory", "02_three_regimes"}) == markdown


def test_the_repository_button_shows_only_with_a_repository_url():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["repository"]["url"] == ""
    assert report.book_config(config)["html"]["use_repository_button"] is False
    config["repository"]["url"] = "https://github.com/someone/sphere-regimes"
    assert report.book_config(config)["html"]["use_repository_button"] is True


def test_a_preset_may_read_the_committed_store(preset_dir, capsys):
    _write_preset(preset_dir, "mine", store="committed", notebooks={"01_toy_theory": {}})
    _write_preset(preset_dir, "own", notebooks={"01_toy_theory": {}})
    assert presets.preset_store("mine").root == paths.RESULTS_DIR
    assert presets.preset_store("own").root == paths.WORK_DIR / "own" / "results"
    assert chapters_main(["store", "mine"]) == 0
    assert capsys.readouterr().out.strip() == str(paths.RESULTS_DIR)
    _write_preset(preset_dir, "odd", store="shared", notebooks={})
    with pytest.raises(presets.PresetError, match=r"odd.yaml: store must be one of \['own', 'committed'\], got "
                                                  "'shared'"):
        presets.preset_store("odd")


def test_a_notebook_runs_its_own_chapters_code_and_reads_the_chapters_it_imports():
    toy = build.library_modules("01_toy_theory")
    assert {"sphere_regimes.chapters.toy", "sphere_regimes.plotting.toy", "sphere_regimes.toy",
            "sphere_regimes.book"} <= toy
    assert not {"sphere_regimes.chapters.three_regimes", "sphere_regimes.plotting.three_regimes",
                "sphere_regimes.overview"} & toy
    assert build.used_chapters("01_toy_theory") == ["01_toy_theory"]
    assert build.used_chapters("03_conventional_training") == ["02_three_regimes", "03_conventional_training"]


def test_a_notebooks_inputs_change_only_with_its_own_section_and_runs(preset_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SPHERE_REGIMES_RESULTS", str(tmp_path / "results"))
    folder = tmp_path / "notebooks"
    notebooks = {"01_toy_theory": {"n_iterations": 300}, "02_three_regimes": {"epochs": 3}}
    _write_preset(preset_dir, "mine", notebooks=notebooks)
    written = build.write_inputs("mine", "01_toy_theory", folder)
    assert [p.name for p in written] == ["01_toy_theory.params.yaml", "01_toy_theory.inputs", "01_toy_theory.d"]
    assert build.write_inputs("mine", "01_toy_theory", folder) == []  # unchanged: the time stamps stay
    _write_preset(preset_dir, "mine", notebooks={**notebooks, "02_three_regimes": {"epochs": 4}})
    assert build.write_inputs("mine", "01_toy_theory", folder) == []  # another chapter's section changed
    _write_preset(preset_dir, "mine", notebooks={**notebooks, "01_toy_theory": {"n_iterations": 400}})
    assert [p.name for p in build.write_inputs("mine", "01_toy_theory", folder)] == \
        ["01_toy_theory.params.yaml", "01_toy_theory.inputs"]
    build.write_inputs("mine", "03_conventional_training", folder)
    states = yaml.safe_load((folder / "03_conventional_training.inputs").read_text())["02_three_regimes"]["runs"]
    assert states and set(states.values()) == {"missing"}  # chapter 03 reads chapter 02's runs
    individual = chapters.three_regimes.individual_configs(chapters.three_regimes.Params.from_preset("mine"))[0]
    RunStore(tmp_path / "results").write_config(individual)  # a run that chapter 02's plan itself does not read
    (tmp_path / "results" / individual.run_id / "status.json").write_text('{"status": "running", "epochs_done": 1}')
    assert [p.name for p in build.write_inputs("mine", "03_conventional_training", folder)] == \
        ["03_conventional_training.inputs"]
    rule = (folder / "01_toy_theory.d").read_text().splitlines()[0]
    assert rule.startswith(f"{folder / '01_toy_theory.ipynb'}: ") and "src/sphere_regimes/chapters/toy.py" in rule


def _stage_one_chapter_book(preset_dir: Path, tmp_path: Path) -> Path:
    """The book of a preset that lists only chapter 01, staged as the Makefile's `book` recipe stages it, with
    a stand-in for the executed notebook (its title and the section labels the scoreboard links to)."""
    _write_preset(preset_dir, "only", notebooks={"01_toy_theory": TINY_TOY})
    executed = tmp_path / "notebooks" / "01_toy_theory.ipynb"
    executed.parent.mkdir()
    labels = "".join(f"({label})=\n## {label}\n\n" for label in ("toy-function", "toy-sweep", "toy-claims"))
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# The toy\n\n{labels}")],
                                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                     "language": "python"}}), executed)
    staged = tmp_path / "book"
    shutil.copytree(BOOK, staged, ignore=shutil.ignore_patterns("_build"))
    overview.write("only", BOOK, staged, {"01_toy_theory"})
    (staged / "reproducibility.md").write_text(report.reproducibility_page("only", [executed]))
    report.stage([executed], staged / "chapters")
    return staged


def test_a_one_chapter_preset_stages_a_book_that_links_only_to_its_chapter(preset_dir, tmp_path):
    staged = _stage_one_chapter_book(preset_dir, tmp_path)
    toc = yaml.safe_load((staged / "_toc.yml").read_text())
    assert [entry["file"] for entry in toc["chapters"]] == ["chapters/01_toy_theory", "differences", "reproducibility",
                                                            "references"]
    intro = (staged / "intro.md").read_text()
    assert "chapters/02" not in intro and "chapters/03" not in intro and "{doc}`chapters/01_toy_theory`" in intro
    assert "does not compute" in intro and overview.HEADLINE_ID not in intro and overview.SCOREBOARD_ID in intro
    assert "does not compute chapter 02" in (staged / "differences.md").read_text()
    assert (staged / "claims.csv").is_file()


@pytest.mark.book
def test_a_one_chapter_preset_builds_its_book(preset_dir, tmp_path):
    staged = _stage_one_chapter_book(preset_dir, tmp_path)
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "--warningiserror",
                             "--nitpick", "--keep-going", "--quiet", str(staged)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = staged / "_build" / "html"
    landing = (html / "intro.html").read_text()
    assert f'id="{overview.SCOREBOARD_ID}"' in landing and 'href="chapters/01_toy_theory.html' in landing
    assert (html / "chapters" / "01_toy_theory.html").is_file()
    assert not (html / "chapters" / "02_three_regimes.html").exists()
    assert "Kodryan" in (html / "references.html").read_text()  # the bibliography was copied and rendered


def test_the_differences_page_compares_our_boundaries_and_regime_3_with_the_papers():
    regime_of = {1e-3: 1, 4e-3: 2, 1e-2: 2, 2e-2: 3}
    summary = pd.DataFrame([{"elr": elr, "seed": 0, "regime": regime, "late_loss_over_initial": 0.5,
                             "grad_over_initial": 20.0} for elr, regime in regime_of.items()])
    findings = chapters.three_regimes.ThreeRegimesFindings(
        params=chapters.three_regimes.Params(), summary=summary, regime_of=regime_of,
        initial=pd.Series({"train_loss": 12.0, "effective_grad_norm": 300.0}))
    ledger = _ledger()
    rows = overview.difference_rows(ledger, findings)
    assert [row[0] for row in rows] == ["the 1→2 boundary",
                                        "the width of regime 2 (its upper over its lower boundary)",
                                        "the regime-3 train loss", "the regime-3 effective gradient"]
    assert "between 0.001 and 0.004: 2.8× the paper's" in rows[0][2]  # sqrt(1e-3 * 4e-3) / sqrt(5e-4 * 1e-3)
    assert "{cite:p}`sadrtdinov2024large`" in rows[0][1]
    assert rows[1][1].startswith("22× (Figure 1") and "40× in the follow-up" in rows[1][1]
    assert rows[1][2] == "7.1×"  # sqrt(1e-2 * 2e-2) / sqrt(1e-3 * 4e-3)
    assert "0.5× at ELR 0.02" in rows[2][2] and "20× at ELR 0.02" in rows[3][2]
    assert "does not compute chapter 02" in overview.differences(ledger, None)
