"""Chapter 04's claims (the follow-up's fine-tuning protocol) on the committed store: each claim's value
recomputed from ``results/*/metrics.csv`` and ``config.json`` with pandas (:mod:`reference`, no analysis
code of the package) equals the ledger's, and the verdicts are the pinned ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference
import yaml

from sphere_regimes import chapters
from sphere_regimes.store import RunStore

NOTEBOOK = "04_fine_tuning"
SPHERE_PRESET = reference.sphere_preset(NOTEBOOK)  # the preset whose three-regimes grid the chapter reads
PARAMS = chapters.fine_tuning.Params.from_preset("cpu")
T2, AVERAGE, FINETUNE_ELR = PARAMS.finetune_epochs, PARAMS.average_epochs, PARAMS.finetune_elr
EXPECTED = Path(__file__).with_name("expected_verdicts.yaml")


@pytest.fixture(scope="module")
def ledger() -> dict:
    """The chapter's claims as :func:`chapters.fine_tuning.analyse` measures them on results/, by id."""
    findings = chapters.fine_tuning.analyse(PARAMS, RunStore(reference.STORE))
    return {claim.id: claim for claim in findings.claims}


def late_test_error(frame: pd.DataFrame) -> float:
    """Mean test error over the evaluated epochs after the initial point in (last - AVERAGE, last]."""
    values = frame["test_error"].dropna()
    values = values[values.index > 0]
    return float(values[values.index > values.index[-1] - AVERAGE].mean())


@pytest.fixture(scope="module")
def tuned() -> pd.DataFrame:
    """One row per committed fine-tuning run: its pre-training ELR and the map's regime there, the test
    errors before (pre-training run) and after (fine-tuned run), in points."""
    runs = reference.runs().set_index("run_id")
    regime_map = reference.sphere_map(preset=SPHERE_PRESET)
    rows = []
    for run_id, run in runs[runs["init_from"].notna()].iterrows():
        source = runs.loc[run["init_from"]]
        rows.append({"elr": source["elr"], "seed": run["seed"],
                     "regime": reference.nearest_regime(regime_map, source["elr"]),
                     "before": 100 * late_test_error(reference.metrics(run["init_from"])),
                     "after": 100 * late_test_error(reference.metrics(run_id))})
    table = pd.DataFrame(rows)
    assert len(table) == 18 and set(table["elr"]) == set(PARAMS.pretrain_elrs)
    return table


@pytest.fixture(scope="module")
def per_elr(tuned) -> pd.DataFrame:
    table = tuned.assign(gain=tuned["before"] - tuned["after"])
    return table.groupby("elr").agg(regime=("regime", "first"), after=("after", "mean"), gain=("gain", "mean"),
                                    gain_spread=("gain", lambda g: g.max() - g.min()))


def test_the_best_fine_tuned_error_comes_from_the_lowest_regime_2_elr(ledger, per_elr):
    best = per_elr["after"].idxmin()
    regime2 = per_elr.index[per_elr["regime"] == 2]
    verdict = "held" if best == regime2.min() else "partly" if best in regime2 else "not held"
    claim = ledger["finetune.low_regime2_best"]
    assert claim.value == pytest.approx(best, rel=1e-12)
    assert str(claim.verdict) == verdict


def test_the_best_fine_tuned_error_beats_the_best_constant_elr(ledger, tuned, per_elr):
    grid = reference.sphere_grid(preset=SPHERE_PRESET)
    constant = min(np.mean([100 * late_test_error(reference.metrics(run_id)) for run_id in group["run_id"]])
                   for _, group in grid.groupby("elr"))
    seeds = tuned.loc[tuned["elr"] == per_elr["after"].idxmin(), "after"]
    advantage = constant - seeds.mean()
    verdict = "held" if advantage > 0 and (seeds < constant).all() else "partly" if advantage > 0 else "not held"
    claim = ledger["finetune.beats_constant"]
    assert claim.value == pytest.approx(advantage, rel=1e-9)
    assert str(claim.verdict) == verdict


def test_regime_1_pre_training_gains_no_more_than_the_seeds_spread(ledger, per_elr):
    regime1 = per_elr[per_elr["regime"] == 1]
    excess = regime1["gain"] - regime1["gain_spread"]
    passed = int((excess <= 0).sum())
    verdict = "held" if passed == len(excess) else "partly" if passed else "not held"
    claim = ledger["finetune.regime1_gains_little"]
    assert claim.value == pytest.approx(excess.max(), rel=1e-9)
    assert str(claim.verdict) == verdict


def test_regime_3_pre_training_is_no_better_than_training_from_scratch(ledger, per_elr):
    grid = reference.sphere_grid(preset=SPHERE_PRESET)
    scratch = np.mean([100 * late_test_error(reference.metrics(run_id).loc[:T2])
                       for run_id in grid.loc[np.isclose(grid["elr"], FINETUNE_ELR), "run_id"]])
    difference = per_elr.loc[per_elr["regime"] == 3, "after"] - scratch
    passed = int((difference >= 0).sum())
    verdict = "held" if passed == len(difference) else "partly" if passed else "not held"
    claim = ledger["finetune.regime3_no_better_than_scratch"]
    assert claim.value == pytest.approx(difference.min(), rel=1e-9)
    assert str(claim.verdict) == verdict


def test_the_verdicts_are_the_pinned_ones(ledger):
    pinned = yaml.safe_load(EXPECTED.read_text())[NOTEBOOK]
    assert {claim_id: str(claim.verdict) for claim_id, claim in ledger.items()} == pinned
