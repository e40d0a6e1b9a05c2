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

from .table import Table


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

    def measured(self, ours: str, value: float, verdict: Verdict, margin: str, reason: str) -> Claim:
        """The claim with our measurement: ``ours`` in words (with the spread over seeds), ``value`` the
        number the rule decided on, the ``verdict``, its ``margin`` and a one-line ``reason``."""
        return Claim(spec=self, ours=ours, value=float(value), verdict=Verdict(verdict), margin=margin, reason=reason)

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

    @property
    def id(self) -> str:
        return self.spec.id

    def row(self) -> dict[str, object]:
        """One row of the ledger table."""
        spec = asdict(self.spec)
        return {**spec, "ours": self.ours, "value": self.value, "verdict": str(self.verdict), "margin": self.margin,
                "reason": self.reason}


COLUMNS = [f.name for f in fields(ClaimSpec)] + ["ours", "value", "verdict", "margin", "reason"]


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
    steps = np.diff(np.asarray(values, dtype=float))
    return int(np.sum(steps > 0 if rising else steps < 0)), len(steps)


def monotone_claim(spec: ClaimSpec, values: pd.Series, rising: bool, what: str, fmt: str = ".3g") -> Claim:
    """A claim that ``values`` (indexed by ELR, sorted) move one way with the ELR: the instances are the
    steps between neighbouring ELRs (:func:`count_verdict`); ``ours`` lists the values."""
    values = values.sort_index()
    passed, total = steps_in_direction(values.to_numpy(), rising)
    ours = ", ".join(f"{v:{fmt}} (ELR {e:g})" for e, v in values.items())
    if total == 0:
        return spec.untested(f"fewer than two ELRs to compare ({what})")
    verdict = count_verdict(passed, total)
    direction = "rises" if rising else "falls"
    reason = (f"{what} {direction} at every step of the ELR" if verdict is Verdict.HELD else
              f"{what} {direction} at {passed} of {total} steps of the ELR")
    return spec.measured(ours, passed / total, verdict, count_margin(passed, total), reason)


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
