"""The claims ledger's summaries: what ``ours`` says of a list of numbers (:func:`claims.trend`,
:func:`claims.extremes`), the detail that keeps every number (:func:`claims.by_elr`), and that every
``ours`` of the committed store fits the scoreboard."""

from __future__ import annotations

import pandas as pd
import pytest

from sphere_regimes import chapters, claims, paths
from sphere_regimes.chapters import three_regimes
from sphere_regimes.store import RunStore

OURS_MAX_CHARS = 90
"""The longest ``ours`` the scoreboard takes. Rendered at 1280 px (the cpu landing page, 2026-12-01) its
column wraps at about 17 characters a line and the claim statements' at about 25, so 90 characters are at
most 6 lines, the height of the rows the longer statements (up to 127 characters) already make; the
generated lists this replaces ran to 234 characters (14 lines)."""

LOSSES = pd.Series([0.0384, 0.02, 0.00897, 0.00484, 0.00312, 0.0819],
                   index=[1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 3.16e-3])
"""A regime-1 loss per ELR that falls at every step but the last (the cpu store's, rounded)."""


def test_a_trend_counts_the_steps_names_the_one_that_fails_and_gives_the_ends():
    assert claims.trend(LOSSES, rising=False) == ("falls at 4 of 5 steps (not 2e-3 → 3.2e-3): 0.0384 → 0.0819 over "
                                                  "ELR 1e-4 → 3.2e-3")
    assert claims.trend(LOSSES.iloc[::-1], rising=False) == claims.trend(LOSSES, rising=False)  # sorted by ELR
    assert claims.trend(LOSSES, rising=True) == "rises at 1 of 5 steps: 0.0384 → 0.0819 over ELR 1e-4 → 3.2e-3"
    assert claims.trend(LOSSES.iloc[:3], rising=False, fmt=".2f").startswith("falls at 2 of 2 steps: 0.04 → 0.01")


def test_a_monotone_claim_shows_its_trend_and_keeps_every_value_in_its_detail():
    claim = claims.monotone_claim(three_regimes.SPECS["regime1.larger_elr_lower_loss"], LOSSES, rising=False,
                                  what="the final train loss")
    assert str(claim.verdict) == "partly" and claim.value == pytest.approx(4 / 5)
    assert claim.ours == claims.trend(LOSSES, rising=False)
    assert claim.detail == "1e-4: 0.0384; 2e-4: 0.02; 5e-4: 0.00897; 1e-3: 0.00484; 2e-3: 0.00312; 3.2e-3: 0.0819"


def test_extremes_give_the_smallest_and_largest_value_with_their_elrs():
    elrs, errors = [2e-2, 2e-2, 5e-2, 1e-1], [0.9, 0.822, 0.9, 0.95]
    assert claims.extremes(elrs, errors) == "0.822 (ELR 2e-2) to 0.95 (ELR 1e-1)"
    assert claims.extremes([2e-2], [0.9]) == "0.9 (ELR 2e-2)"


def test_the_detail_groups_the_seeds_of_each_elr():
    assert claims.by_elr([2e-2, 2e-2, 5e-2], [0.822, 0.9, 0.869]) == "2e-2: 0.822 0.9; 5e-2: 0.869"
    assert claims.by_elr([1e-3], ["gain 0.26"], fmt=None) == "1e-3: gain 0.26"


def test_the_detail_table_lists_only_the_claims_with_a_detail():
    spec = three_regimes.SPECS["regime2.loss_rises"]
    listed = [spec.measured("short", 1, claims.Verdict.HELD, "", "", detail="5e-3: 0.562"),
              spec.measured("short", 1, claims.Verdict.HELD, "", "")]
    frame = claims.detail_table(listed).frame
    assert frame.to_dict("records") == [{"claim": spec.statement, "quantity": spec.quantity, "numbers": "5e-3: 0.562"}]


def test_every_ours_of_the_committed_store_fits_the_scoreboard():
    ledger = chapters.ledger("cpu", RunStore(paths.REPO_ROOT / "results"))
    too_long = {c.id: c.ours for c in ledger.claims if len(c.ours) > OURS_MAX_CHARS}
    assert not too_long, f"longer than {OURS_MAX_CHARS} characters: {too_long}"
