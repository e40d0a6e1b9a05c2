"""The claims ledger: every claim of the paper (and of the follow-up's fine-tuning protocol) that the book
tests, with its measured value and a verdict computed by a rule written from the paper's wording.

A claim is declared once, as a :class:`ClaimSpec` in its chapter's module, before any data is read: its
statement, the paper's number, the quantity we measure and the **rule** that turns the measurement into
a verdict. Where the paper is qualitative ("huge", "about constant") the rule is *our reading* of its
words or figures, and the spec says so (``reading``). The verdict words mean, for every claim:

* ``held``: the condition holds at every instance the claim is about (every ELR, step between
  neighbouring ELRs, run or loss level);
* ``partly``: it holds at some instances but not at all, or a claim with two parts holds in one;
* ``not held``: it holds at none;
* ``not tested here``: the preset does not compute the chapter, or our setting cannot test the claim
  (a claim about CIFAR-10 numbers, say).

Every measured verdict carries its **margin**: how far the measured value is from flipping it. The
regime rule (:mod:`sphere_regimes.regimes`) was chosen after the first runs of the ``cpu`` preset had
been seen; every claim whose verdict depends on the regime labels says so (``uses_regime_rule``).

``sphere-regimes claims PRESET`` prints the ledger; ``--csv FILE`` writes it (the book ships it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

import numpy as np
import pandas as pd

from .table import Table, per_seed, scientific


class Verdict(str, Enum):
    HELD = "held"
    PARTLY = "partly"
    NOT_HELD = "not held"
    NOT_TESTED = "not tested here"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ClaimSpec:
    """A claim as the paper states it and the rule that decides it, fixed before the data is read."""

    id: str  # short, stable: "regime3.gradient_huge"
    chapter: str  # the notebook that measures it: "02_three_regimes"
    statement: str  # the paper's claim in one line
    source: str  # where the paper says it: "§4, Figure 1"
    paper: str  # the paper's number where it has one, else ""
    quantity: str  # what we measure
    rule: str  # the verdict rule in words
    reading: str = ""  # where the paper is qualitative: how we read its words, and that it is our reading
    uses_regime_rule: bool = False  # the verdict depends on the regime labels
    section: str = ""  # the label of the book section that shows it

    def measured(self, ours: str, value: float, verdict: Verdict, margin: str, reason: str,
                 detail: str = "") -> Claim:
        """The claim with our measurement: ``ours`` a short summary of what the rule looked at (with the
        spread over seeds; the scoreboard's column), ``value`` the number the rule decided on, the
        ``verdict``, its ``margin``, a one-line ``reason`` and the ``detail``: every number the rule looked
        at, per ELR (:func:`by_elr`), where ``ours`` summarises a list."""
        return Claim(spec=self, ours=ours, value=float(value), verdict=Verdict(verdict), margin=margin, reason=reason,
                     detail=detail)

    def untested(self, reason: str) -> Claim:
        """The claim with verdict ``not tested here`` and why."""
        return Claim(spec=self, ours="", value=math.nan, verdict=Verdict.NOT_TESTED, margin="", reason=reason)


@dataclass(frozen=True)
class Claim:
    """A claim with our measurement and its verdict."""

    spec: ClaimSpec
    ours: str
    value: float
    verdict: Verdict
    margin: str
    reason: str
    detail: str = ""

    @property
    def id(self) -> str:
        return self.spec.id

    def row(self) -> dict[str, object]:
        """One row of the ledger table."""
        spec = asdict(self.spec)
        return {**spec, "ours": self.ours, "value": self.value, "verdict": str(self.verdict), "margin": self.margin,
                "reason": self.reason, "detail": self.detail}


COLUMNS = [f.name for f in fields(ClaimSpec)] + ["ours", "value", "verdict", "margin", "reason", "detail"]


# --------------------------------------------------------------------------- the rules' building blocks

def count_verdict(passed: int, total: int) -> Verdict:
    """``held`` if every one of ``total`` instances passes, ``partly`` if some do, ``not held`` if none."""
    if total == 0:
        return Verdict.NOT_TESTED
    return Verdict.HELD if passed == total else Verdict.PARTLY if passed else Verdict.NOT_HELD


def count_margin(passed: int, total: int) -> str:
    """How many instances would have to change to flip a :func:`count_verdict`."""
    if total == 0:
        return ""
    if passed == total:
        return f"{total}/{total} pass; 1 failure makes it partly"
    if passed == 0:
        return f"0/{total} pass; 1 pass makes it partly"
    return f"{passed}/{total} pass; {total - passed} more to hold, {passed} fewer to fail"


def ratio_margin(value: float, bound: float, below: bool) -> str:
    """The distance of ``value`` from the ``bound`` it must stay below (``below``) or above, as a factor."""
    if not (np.isfinite(value) and np.isfinite(bound)) or bound == 0 or value == 0:
        return f"value {value:.3g}, bound {bound:.3g}"
    factor = bound / value if below else value / bound
    side = "inside" if factor >= 1 else "outside"
    return f"{value:.3g} against the bound {bound:.3g}: a factor {abs(factor):.3g} {side}"


def steps_in_direction(values: Sequence[float], rising: bool) -> tuple[int, int]:
    """How many steps between neighbouring values go the ``rising`` (or falling) way, of how many."""
    passes = _step_passes(values, rising)
    return int(passes.sum()), len(passes)


def _step_passes(values: Sequence[float], rising: bool) -> np.ndarray:
    """Per step between neighbouring values: does it go the ``rising`` (or falling) way (NaN: no)?"""
    steps = np.diff(np.asarray(values, dtype=float))
    return steps > 0 if rising else steps < 0


# --------------------------------------------------------------------------- the summaries ``ours`` shows

def trend(values: pd.Series, rising: bool, fmt: str = ".3g") -> str:
    """What :func:`monotone_claim`'s rule looked at, in one line: ``values`` (indexed by ELR) counted step by
    step, the failing step named when there is one, the first and last value:
    ``falls at 4 of 5 steps (not 2e-3 → 3.2e-3): 0.0384 → 0.0819 over ELR 1e-4 → 3.2e-3``."""
    values = values.sort_index()
    passes = _step_passes(values.to_numpy(), rising)
    elrs = [scientific(e) for e in values.index]
    failing = [f"{elrs[i]} → {elrs[i + 1]}" for i in np.flatnonzero(~passes)]
    exception = f" (not {failing[0]})" if len(failing) == 1 else ""
    return (f"{'rises' if rising else 'falls'} at {int(passes.sum())} of {len(passes)} steps{exception}: "
            f"{values.iloc[0]:{fmt}} → {values.iloc[-1]:{fmt}} over ELR {elrs[0]} → {elrs[-1]}")


def extremes(elrs: Sequence[float], values: Sequence[float], fmt: str = ".3g") -> str:
    """The smallest and the largest of ``values`` (per ELR or per run), each with its ELR:
    ``0.822 (ELR 2e-2) to 0.9 (ELR 5e-2)``; one value alone as ``0.9 (ELR 2e-2)``."""
    elrs, values = np.asarray(elrs, dtype=float), np.asarray(values, dtype=float)
    low, high = int(np.nanargmin(values)), int(np.nanargmax(values))
    text = f"{values[low]:{fmt}} (ELR {scientific(elrs[low])})"
    return text if len(values) == 1 else f"{text} to {values[high]:{fmt}} (ELR {scientific(elrs[high])})"


def by_elr(elrs: Sequence[float], values: Sequence, fmt: str | None = ".3g") -> str:
    """Every value with its ELR, the values of one ELR (one per seed) together: ``1e-4: 0.0384; 2e-4: 0.02``
    or ``2e-2: 0.822 0.9 0.9; 5e-2: 0.9 0.9 0.9`` (a claim's ``detail``). ``fmt`` None: values are text."""
    groups: dict[float, list[str]] = {}
    for elr, value in zip(elrs, values):
        groups.setdefault(float(elr), []).append(str(value) if fmt is None else f"{value:{fmt}}")
    return "; ".join(f"{scientific(elr)}: {per_seed(texts)}" for elr, texts in groups.items())


def monotone_claim(spec: ClaimSpec, values: pd.Series, rising: bool, what: str, fmt: str = ".3g") -> Claim:
    """A claim that ``values`` (indexed by ELR, sorted) move one way with the ELR: the instances are the
    steps between neighbouring ELRs (:func:`count_verdict`); ``ours`` is their :func:`trend`, the detail
    every value."""
    values = values.sort_index()
    passed, total = steps_in_direction(values.to_numpy(), rising)
    if total == 0:
        return spec.untested(f"fewer than two ELRs to compare ({what})")
    verdict = count_verdict(passed, total)
    direction = "rises" if rising else "falls"
    reason = (f"{what} {direction} at every step of the ELR" if verdict is Verdict.HELD else
              f"{what} {direction} at {passed} of {total} steps of the ELR")
    return spec.measured(trend(values, rising, fmt), passed / total, verdict, count_margin(passed, total), reason,
                         by_elr(values.index, values, fmt))


def spread(values: Sequence[float]) -> str:
    """``mean (min–max)`` of a few per-seed values."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{values.mean():.3g} ({values.min():.3g}–{values.max():.3g})"


# --------------------------------------------------------------------------- the ledger

TABLE_COLUMNS = {"statement": "claim (paper)", "paper": "paper", "ours": "ours", "verdict": "verdict",
                 "margin": "margin", "reason": "why"}
"""The columns a chapter's claims table shows, with their headings."""


def claims_table(claims: Sequence[Claim]) -> Table:
    """A chapter's claims as the table its "Claims" section shows (regime-rule-dependent verdicts marked *)."""
    frame = ledger_frame(claims)
    frame["verdict"] = [f"{v}{' *' if uses else ''}" for v, uses in zip(frame["verdict"], frame["uses_regime_rule"])]
    return Table(frame[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS), show_index=False)


def detail_table(claims: Sequence[Claim]) -> Table:
    """Every number behind the claims whose ``ours`` summarises a list (the claim, what we measure, the
    numbers per ELR): the table below a chapter's claims table."""
    frame = pd.DataFrame([{"claim": c.spec.statement, "quantity": c.spec.quantity, "numbers": c.detail}
                          for c in claims if c.detail], columns=["claim", "quantity", "numbers"])
    return Table(frame, show_index=False, headings={"claim": "claim (paper)", "quantity": "what we measure",
                                                    "numbers": "ELR: value (one per seed where per run)"})


def ledger_frame(claims: Sequence[Claim]) -> pd.DataFrame:
    """The ledger as a table, one row per claim, in :data:`COLUMNS` order."""
    return pd.DataFrame([c.row() for c in claims], columns=COLUMNS)


def verdict_counts(claims: Sequence[Claim]) -> dict[str, int]:
    """How many claims got each verdict."""
    return {str(v): sum(c.verdict is v for c in claims) for v in Verdict}


@dataclass
class Ledger:
    """Every claim of the book under one preset."""

    preset: str
    claims: list[Claim] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return ledger_frame(self.claims)

    def counts(self) -> dict[str, int]:
        return verdict_counts(self.claims)

    def __getitem__(self, claim_id: str) -> Claim:
        for claim in self.claims:
            if claim.id == claim_id:
                return claim
        raise KeyError(f"no claim {claim_id!r}; the ledger holds {[c.id for c in self.claims]}")
