"""The book's generated results pages: the landing page's results at a glance (the headline figure and the
claims scoreboard) and the differences page's comparison of our results with the paper's.

Both are written from the claims ledger (:func:`sphere_regimes.chapters.ledger`) and chapter 02's findings
into templates of ``book/`` (``intro.md``, ``differences.md``) at an HTML-comment marker, by
``python -m sphere_regimes.report overview PRESET BOOK`` (the Makefile's ``book`` recipe). Nothing on them is
typed by hand: the counts, the verdicts and every number of ours come from the ledger and the findings.
The page elements a browser test can look for: the scoreboard table has the id ``claims-scoreboard``, the
headline figure the id ``headline-figure``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import presets, regimes
from .chapters import analysed, ledger, three_regimes
from .chapters.three_regimes import FOLLOW_UP_BOUNDARIES, PAPER_BRACKETS
from .claims import Claim, Ledger, Verdict
from .plotting import set_style
from .plotting.style import figure_png
from .plotting.landing import plot_regime_map
from .table import scientific

RESULTS_MARKER = "<!-- results at a glance -->"
"""Where the landing page template ``book/intro.md`` receives the headline figure and the scoreboard."""
DIFFERENCES_MARKER = "<!-- results that differ -->"
"""Where the differences template ``book/differences.md`` receives the comparison of results."""
SCOREBOARD_ID = "claims-scoreboard"
HEADLINE_ID = "headline-figure"
HEADLINE_FILE = "headline.png"
VERDICT_MARKS = {Verdict.HELD: "✓", Verdict.PARTLY: "◐", Verdict.NOT_HELD: "✗", Verdict.NOT_TESTED: "–"}
VERDICT_BADGES = {Verdict.HELD: "bdg-success", Verdict.PARTLY: "bdg-warning", Verdict.NOT_HELD: "bdg-danger",
                  Verdict.NOT_TESTED: "bdg-muted"}
"""sphinx-design badge roles of the verdicts (the word and its mark carry the meaning, the colour repeats it)."""


def verdict_badge(verdict: Verdict) -> str:
    return f"{{{VERDICT_BADGES[verdict]}}}`{VERDICT_MARKS[verdict]} {verdict}`"


def md_escape(text: str) -> str:
    """``text`` with the characters that MyST reads as markup (emphasis, roles, math, links) escaped."""
    return re.sub(r"([\\`*_\[\]<>$|{}])", r"\\\1", text)


def chapter_doc(notebook: str) -> str:
    return f"chapters/{notebook}"


def claim_link(claim: Claim, staged: set[str]) -> str:
    """A reference to the book section that shows ``claim`` (its spec's ``section`` label, else its
    chapter's page), or a note when the preset's book leaves that chapter out."""
    chapter = claim.spec.chapter
    if chapter not in staged:
        return "not in this book"
    if claim.spec.section:
        return f"{{ref}}`ch. {chapter[:2]} <{claim.spec.section}>`"
    return f"{{doc}}`ch. {chapter[:2]} <{chapter_doc(chapter)}>`"


def counts_sentence(book_ledger: Ledger) -> str:
    counts = book_ledger.counts()
    return " ".join(f"{verdict_badge(Verdict(verdict))} **{n}**" for verdict, n in counts.items())


def scoreboard(book_ledger: Ledger, staged: set[str]) -> str:
    """The claims scoreboard as a MyST list-table (HTML id :data:`SCOREBOARD_ID`): claim, the paper's number,
    ours, the verdict (``*``: it depends on the regime rule) and the section that shows it, after the counts."""
    rows = [["claim", "paper", "ours", "verdict", "where"]]
    for claim in book_ledger.claims:
        verdict = verdict_badge(claim.verdict) + (" \\*" if claim.spec.uses_regime_rule else "")
        rows.append([md_escape(claim.spec.statement), md_escape(claim.spec.paper) or "–",
                     md_escape(claim.ours) or md_escape(claim.reason), verdict, claim_link(claim, staged)])
    body = "\n".join("* " + "\n  ".join(f"- {cell}" for cell in row) for row in rows)
    return "\n".join([
        f"**Claims scoreboard** ({len(book_ledger.claims)} claims): " + counts_sentence(book_ledger)
        + ". \\*: the verdict depends on our regime rule. Every rule, margin, reason and number behind *ours*: "
        "[claims.csv](claims.csv).",
        "",
        ":::{list-table}",
        f":name: {SCOREBOARD_ID}",
        f":class: {SCOREBOARD_ID}",
        ":header-rows: 1",
        ":widths: 30 18 30 13 9",
        "",
        body,
        ":::",
    ])


def headline(findings: three_regimes.ThreeRegimesFindings) -> str:
    """The headline figure (HTML id :data:`HEADLINE_ID`, no caption: it takes no figure number) and the
    sentence under it."""
    boundaries, spans = regimes.regime_map(findings.summary)
    regions = ", ".join(f"{r} up to ELR {scientific(b)}" for r, b in zip(spans, boundaries)) + f", {spans[-1]} above"
    params = findings.params
    return "\n".join([
        f":::{{figure}} {HEADLINE_FILE}",
        f":name: {HEADLINE_ID}",
        f":alt: Three panels against the effective learning rate: final train loss, final test error and final "
        f"effective gradient of ConvNetSI-{params.width} runs, with the regimes as coloured bands ({regions}) "
        f"and the paper's boundaries hatched ({_paper_brackets_text()}).",
        ":width: 100%",
        ":::",
        "",
        f"**The regime map** of {{doc}}`chapter 02 <{chapter_doc(three_regimes.NOTEBOOK)}>` after {params.epochs} "
        f"epochs on the sphere (ConvNetSI-{params.width}, {len(params.seeds)} seeds per ELR; line: mean, band: "
        f"min–max). Coloured: our regimes ({regions}); hatched: the paper's boundary brackets "
        f"{{cite:p}}`kodryan2022three`; dashed: the initial point and chance.",
    ])


def _paper_brackets_text() -> str:
    return " and ".join(f"{a}→{b} in ({low:g}, {high:g})" for (a, b), (low, high) in PAPER_BRACKETS.items())


def results_at_a_glance(book_ledger: Ledger, staged: set[str],
                        findings: three_regimes.ThreeRegimesFindings | None) -> str:
    """The landing page's block: the headline figure (when the preset computes chapter 02) and the scoreboard."""
    figure = (headline(findings) if findings is not None else
              f"*The regime map needs chapter 02, which preset `{book_ledger.preset}` does not compute.*")
    description = md_escape(presets.load_preset(book_ledger.preset)["description"].rstrip("."))
    opening = (f"This book reproduces {{cite:t}}`kodryan2022three` with the preset `{book_ledger.preset}` "
               f"({description}) and tests each claim by a rule written from the paper's wording. Everything below is generated from "
               "the result store when the book is built.")
    return f"{opening}\n\n{figure}\n\n{scoreboard(book_ledger, staged)}\n"


# --------------------------------------------------------------------------- the differences page

def _brackets(findings: three_regimes.ThreeRegimesFindings) -> dict[tuple[int, int], tuple[float, float]]:
    return {(a, b): (low, high) for a, b, low, high in regimes.grid_boundaries(findings.summary)}


def _midpoint(bracket: tuple[float, float]) -> float:
    return math.sqrt(bracket[0] * bracket[1])


def _paper(book_ledger: Ledger, claim_id: str) -> str:
    return book_ledger[claim_id].spec.paper


def _verdict(book_ledger: Ledger, claim_id: str) -> str:
    claim = book_ledger[claim_id]
    return f"`{claim_id}`: {claim.verdict}"


def difference_rows(book_ledger: Ledger, findings: three_regimes.ThreeRegimesFindings) -> list[list[str]]:
    """The results that differ from the paper's: what, the paper's, ours (with the ledger's verdict), why."""
    ours = _brackets(findings)
    rows = []
    if (1, 2) in ours:
        low, high = ours[1, 2]
        paper_low, paper_high = PAPER_BRACKETS[1, 2]
        rows.append([
            "the 1→2 boundary", f"between ELR {paper_low:g} and {paper_high:g} (Figure 1); "
            f"{FOLLOW_UP_BOUNDARIES[1, 2]:g} in the follow-up {{cite:p}}`sadrtdinov2024large`",
            f"between {low:.3g} and {high:.3g}: {_midpoint(ours[1, 2]) / _midpoint(PAPER_BRACKETS[1, 2]):.2g}× the "
            f"paper's (geometric midpoints; the brackets allow {low / paper_high:.2g}× to {high / paper_low:.2g}×); "
            + _verdict(book_ledger, "regimes.boundaries"),
            f"unknown: our net is {findings.params.width} channels wide (the paper's 32) and trained on Fashion-MNIST "
            f"(CIFAR-10) for {findings.params.epochs} epochs (1000); no run here changes one of these alone."])
    if (1, 2) in ours and (2, 3) in ours:
        span = _midpoint(ours[2, 3]) / _midpoint(ours[1, 2])
        paper_span = _midpoint(PAPER_BRACKETS[2, 3]) / _midpoint(PAPER_BRACKETS[1, 2])
        follow_up = FOLLOW_UP_BOUNDARIES[2, 3] / FOLLOW_UP_BOUNDARIES[1, 2]
        rows.append([
            "the width of regime 2 (its upper over its lower boundary)",
            f"{paper_span:.2g}× (Figure 1, geometric midpoints); {follow_up:.2g}× in the follow-up",
            f"{span:.2g}×",
            f"the 2→3 boundary is where the paper has it "
            f"({_midpoint(ours[2, 3]) / _midpoint(PAPER_BRACKETS[2, 3]):.2g}×"
            " the paper's midpoint), so regime 2 is narrower by the shift of the 1→2 boundary above; why that "
            "boundary moves is unknown"])
    three = findings.summary[findings.summary["elr"].map(findings.regime_of) == 3]
    if len(three):
        loss = three.groupby("elr")["late_loss_over_initial"].mean()
        gradient = three.groupby("elr")["grad_over_initial"].mean()
        rows.append([
            "the regime-3 train loss", _paper(book_ledger, "regime3.loss_at_initial"),
            "over the second half, " + _per_elr(loss) + " of the initial loss "
            f"({findings.initial['train_loss']:.3g}); " + _verdict(book_ledger, "regime3.loss_at_initial"),
            "unknown"])
        rows.append([
            "the regime-3 effective gradient", _paper(book_ledger, "regime3.gradient_huge"),
            "at the end, " + _per_elr(gradient) + " the initial one "
            f"({findings.initial['effective_grad_norm']:.3g}); " + _verdict(book_ledger, "regime3.gradient_huge"),
            "unknown"])
    return rows


def _per_elr(values: pd.Series) -> str:
    return ", ".join(f"{v:.2g}× at ELR {e:.2g}" for e, v in values.items())


def differences(book_ledger: Ledger, findings: three_regimes.ThreeRegimesFindings | None) -> str:
    """The differences page's table of results that differ from the paper's (chapter 02's numbers)."""
    if findings is None:
        return f"*Preset `{book_ledger.preset}` does not compute chapter 02, whose results are compared here.*\n"
    rows = difference_rows(book_ledger, findings)
    lines = ["| result | paper | ours (preset `" + book_ledger.preset + "`) | why |", "|---|---|---|---|",
             *("| " + " | ".join(row) + " |" for row in rows)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- writing the pages

def write(preset: str, template_dir: Path, book_dir: Path, staged: set[str]) -> Ledger:
    """Write ``intro.md`` (with :data:`HEADLINE_FILE`), ``differences.md`` and ``claims.csv`` of ``preset``'s book
    into ``book_dir`` from the templates in ``template_dir``; ``staged`` are the chapters the book shows."""
    findings = analysed(preset)
    book_ledger = ledger(preset, findings=findings)
    three = findings.get(three_regimes.NOTEBOOK)
    if three is not None:
        set_style()
        figure = plot_regime_map(three.summary, three.initial, three.chance_error, PAPER_BRACKETS)
        (book_dir / HEADLINE_FILE).write_bytes(figure_png(figure))  # records its smallest font (browser test)
        plt.close(figure)
    _fill(template_dir / "intro.md", book_dir / "intro.md", RESULTS_MARKER,
          results_at_a_glance(book_ledger, staged, three))
    _fill(template_dir / "differences.md", book_dir / "differences.md", DIFFERENCES_MARKER,
          differences(book_ledger, three))
    book_ledger.frame().to_csv(book_dir / "claims.csv", index=False)
    return book_ledger


def _fill(template: Path, target: Path, marker: str, block: str) -> None:
    text = template.read_text()
    if marker not in text:
        raise ValueError(f"{template} lacks the marker {marker!r} where the generated results go")
    target.write_text(text.replace(marker, block))
