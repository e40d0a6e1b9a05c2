"""The three-regimes chapter's claims on the committed store: every measured value recomputed from
``results/*/metrics.csv`` with pandas (:mod:`reference`, not the package's analysis), the verdicts pinned
in ``expected_verdicts.yaml``, and a verdict that flips when the data says otherwise."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import reference
from sphere_regimes import chapters, paths
from sphere_regimes.chapters import three_regimes
from sphere_regimes.models import ConvNetSI, si_parameters
from sphere_regimes.optim import SphereSGD
from sphere_regimes.store import RunStore

COMMITTED = RunStore(paths.REPO_ROOT / "results")
PINNED = yaml.safe_load((paths.REPO_ROOT / "tests" / "expected_verdicts.yaml").read_text())
LEVELS = (0.1, 0.05, 0.03)


@pytest.fixture(scope="module")
def findings():
    return three_regimes.analyse(three_regimes.Params.from_preset("cpu"), COMMITTED)


@pytest.fixture(scope="module")
def value(findings):
    return {claim.id: claim.value for claim in findings.claims}


@pytest.fixture(scope="module")
def verdict(findings):
    return {claim.id: claim.verdict for claim in findings.claims}


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    """One row per grid run: ELR, seed, regime, its final row and second-half means, from metrics.csv."""
    table = reference.sphere_grid()
    rows = []
    for run in table.itertuples():
        frame = reference.grid_metrics(run.run_id)
        full = frame[frame["train_loss"].notna()]
        late = reference.second_half(frame)
        rows.append({"run_id": run.run_id, "elr": run.elr, "seed": run.seed, "regime": run.regime,
                     "final_loss": full["train_loss"].iloc[-1], "loss_at_half": late["train_loss"].iloc[0],
                     "late_loss": late["train_loss"].mean(), "late_grad": late["effective_grad_norm"].mean(),
                     "initial_loss": frame.loc[0, "train_loss"], "grad_ratio": full["effective_grad_norm"].iloc[-1]
                     / frame.loc[0, "effective_grad_norm"], "final_error": full["test_error"].iloc[-1],
                     "best_error": frame["test_error"].min(), "late_error": _tail_mean(frame["test_error"], 10),
                     "cos": full["cos_to_init"].iloc[-1], "sharpness": frame["sharpness"].dropna().iloc[-1]})
    return pd.DataFrame(rows)


def _tail_mean(column: pd.Series, epochs: int) -> float:
    values = column.dropna()
    values = values[values.index > 0]
    return float(values[values.index > values.index[-1] - epochs].mean())


def _in(grid: pd.DataFrame, regime: int) -> pd.DataFrame:
    majority = grid.groupby("elr")["regime"].agg(reference.majority)
    return grid[grid["elr"].map(majority) == regime]


def _fraction_of_steps(values: pd.Series, rising: bool) -> float:
    steps = np.diff(values.sort_index().to_numpy())
    return float(np.mean(steps > 0 if rising else steps < 0))


def _at_loss(run_id: str, column: str, level: float) -> float:
    """``column`` where the run's loss first reaches ``level``, linear in log loss between evaluated epochs."""
    both = reference.grid_metrics(run_id)[["train_loss", column]].dropna()
    log_loss = np.log(both["train_loss"].to_numpy())
    crossed = np.flatnonzero(log_loss <= np.log(level))
    if len(crossed) == 0 or crossed[0] == 0:
        return np.nan
    i, values = crossed[0], both[column].to_numpy()
    return values[i - 1] + (np.log(level) - log_loss[i - 1]) / (log_loss[i] - log_loss[i - 1]) * (values[i] - values[i - 1])


def _equal_loss(grid: pd.DataFrame, column: str) -> pd.DataFrame:
    one = _in(grid, 1)
    rows = [{"elr": r.elr, **{level: _at_loss(r.run_id, column, level) for level in LEVELS}} for r in one.itertuples()]
    return pd.DataFrame(rows).groupby("elr").mean()


def test_the_ledger_verdicts_are_the_pinned_ones(findings):
    assert {c.id: str(c.verdict) for c in findings.claims} == PINNED["02_three_regimes"]


def test_projection_norm_exact(value):
    deviation = max(float((n / n.iloc[0] - 1).abs().max()) for n in
                    (reference.grid_metrics(r)["si_norm"].dropna() for r in reference.sphere_grid()["run_id"]))
    assert value["projection.norm_exact"] == pytest.approx(deviation, rel=1e-12)


def test_projection_elr_only_against_a_hand_written_projected_step(value):
    """w <- w - lr grad, then all SI tensors rescaled jointly to ||w0||, with lr = elr ||w0||^2, written out by
    hand: SphereSGD follows it, and scaling w0 by 3 leaves the unit-norm trajectory unchanged."""
    torch.manual_seed(5)
    images, labels = torch.randn(32, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (32,))

    def trajectory(factor: float, by_hand: bool) -> torch.Tensor:
        torch.manual_seed(2)
        model = ConvNetSI(width=2, in_channels=1, num_classes=10).double()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = 1e-300
        si = list(si_parameters(model).values())
        with torch.no_grad():
            for w in si:
                w.mul_(factor)
        radius = torch.sqrt(sum((w ** 2).sum() for w in si))
        optimizer = SphereSGD(si, elr=1e-3)
        for _ in range(10):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            if by_hand:
                with torch.no_grad():
                    for w in si:
                        w -= 1e-3 * radius ** 2 * w.grad
                    scale = radius / torch.sqrt(sum((w ** 2).sum() for w in si))
                    for w in si:
                        w *= scale
            else:
                optimizer.step()
        flat = torch.cat([w.detach().flatten() for w in si])
        return flat / flat.norm()

    reference_path = trajectory(1.0, by_hand=True)
    assert torch.allclose(trajectory(1.0, by_hand=False), reference_path, rtol=0, atol=1e-12)
    assert torch.allclose(trajectory(3.0, by_hand=True), reference_path, rtol=0, atol=1e-12)
    assert value["projection.elr_only"] == pytest.approx(three_regimes.elr_only_deviation())
    assert value["projection.elr_only"] < 1e-9


def test_three_regimes_ordered(value):
    labels = list(reference.sphere_map())
    assert value["regimes.three_ordered"] == float(set(labels) == {1, 2, 3} and labels == sorted(labels))


def test_boundaries_against_the_paper(value):
    regime_map = reference.sphere_map()
    elrs, labels = list(regime_map.index), list(regime_map)
    ours = {(labels[i], labels[i + 1]): (elrs[i], elrs[i + 1]) for i in range(len(elrs) - 1) if labels[i] != labels[i + 1]}
    paper = {(1, 2): (5e-4, 1e-3), (2, 3): (5e-3, 5e-2)}
    overlaps = sum(ours[key][0] < high and low < ours[key][1] for key, (low, high) in paper.items())
    assert value["regimes.boundaries"] == overlaps / 2


def test_regime1_loss_keeps_falling(grid, value):
    one = _in(grid, 1)
    assert value["regime1.loss_keeps_falling"] == pytest.approx((one["final_loss"] < one["loss_at_half"]).mean())


def test_regime1_larger_elr_lower_loss_and_error(grid, value):
    per_elr = _in(grid, 1).groupby("elr").mean(numeric_only=True)
    assert value["regime1.larger_elr_lower_loss"] == pytest.approx(_fraction_of_steps(per_elr["final_loss"], rising=False))
    assert value["regime1.larger_elr_lower_error"] == pytest.approx(_fraction_of_steps(per_elr["best_error"], rising=False))


@pytest.mark.parametrize("claim, column", [("regime1.best_at_top", "best_error"), ("regime1.best_at_top_late", "late_error")])
def test_regime1_best_test_error_elr(grid, value, claim, column):
    assert value[claim] == pytest.approx(grid.groupby("elr")[column].mean().idxmin())


def test_regime1_one_line_and_flatter(grid, value):
    gradient, sharpness = _equal_loss(grid, "effective_grad_norm"), _equal_loss(grid, "sharpness")
    assert value["regime1.one_line"] == pytest.approx(max(gradient[level].max() / gradient[level].min() for level in LEVELS))
    steps = [np.diff(sharpness[level].dropna().to_numpy()) for level in LEVELS]
    assert value["regime1.flatter_at_higher_elr"] == pytest.approx(np.mean(np.concatenate(steps) < 0))


def test_regime2_stationary_levels_and_elr_sharpness(grid, value, verdict):
    per_elr = _in(grid, 2).groupby("elr").mean(numeric_only=True)
    assert value["regime2.loss_rises"] == pytest.approx(_fraction_of_steps(per_elr["late_loss"], rising=True))
    assert value["regime2.gradient_falls"] == pytest.approx(_fraction_of_steps(per_elr["late_grad"], rising=False))
    product = per_elr.index.to_series() * per_elr["sharpness"]
    assert value["regime2.elr_sharpness_constant"] == pytest.approx(product.max() / product.min())
    about_constant = bool((product > 0).all() and product.max() / product.min() <= 2)  # a factor bounds positive values only
    assert str(verdict["regime2.elr_sharpness_constant"]) == ("held" if about_constant else "not held")
    assert value["regime2.weights_move"] == pytest.approx((_in(grid, 2)["cos"] < 0.5).mean())


def test_elr_times_sharpness_that_changes_sign_is_not_about_constant():
    """A max/min ratio bounds the spread of positive values only: where the sharpness estimate is negative at
    one regime-2 ELR, the product changes sign and the claim is not held, though max/min is then below 2."""
    two = pd.DataFrame({"sharpness": [20.0, -10.0]}, index=pd.Index([5e-3, 2e-2], name="elr"))
    changes_sign = three_regimes._elr_sharpness(two)
    assert changes_sign.value < 2 and str(changes_sign.verdict) == "not held"
    assert str(three_regimes._elr_sharpness(two.abs()).verdict) == "held"  # 0.1 and 0.2: a factor 2


def test_regime3_signatures(grid, value):
    three = _in(grid, 3)
    per_elr = three.assign(loss_ratio=three["late_loss"] / three["initial_loss"]).groupby("elr").mean(numeric_only=True)
    assert value["regime3.loss_at_initial"] == pytest.approx((per_elr["loss_ratio"] >= 0.8).mean())
    assert value["regime3.chance_error"] == pytest.approx(((three["final_error"] - 0.9).abs() <= 0.05).mean())
    assert value["regime3.gradient_huge"] == pytest.approx((per_elr["grad_ratio"] >= 10).mean())
    assert value["regime3.random_walk"] == pytest.approx((three["cos"].abs() <= 0.05).mean())


def _edited_copy(tmp_path, run_ids, edit) -> RunStore:
    """The chapter's runs copied into a scratch store, ``edit(frame)`` applied to the metrics of ``run_ids``
    (with the checksums in status.json updated, as a real run would have them)."""
    store = RunStore(tmp_path / "results")
    for run_id in {config.run_id for config in chapters.planned_runs("cpu", "02", COMMITTED)["02_three_regimes"]}:
        shutil.copytree(COMMITTED.root / run_id, store.root / run_id)  # a budget-study run is planned twice
    for run_id in run_ids:
        folder = store.root / run_id
        frame = pd.read_csv(folder / "metrics.csv", index_col="epoch")
        edit(frame)
        frame.to_csv(folder / "metrics.csv", float_format="%.9g")
        status = json.loads((folder / "status.json").read_text())
        status["metrics_sha256"] = hashlib.sha256((folder / "metrics.csv").read_bytes()).hexdigest()
        (folder / "status.json").write_text(json.dumps(status, indent=2, sort_keys=True))
    return store


def test_a_verdict_flips_when_the_data_says_otherwise(tmp_path, findings):
    """Regime-3 runs whose final effective gradient were 100x larger would make "huge gradient" hold: the
    ledger, recomputed on the edited copy, then differs from the pinned verdict."""
    three = _in_regime_ids(3)

    def huge(frame: pd.DataFrame) -> None:
        last = frame["train_loss"].last_valid_index()
        frame.loc[last, "effective_grad_norm"] *= 100

    edited = three_regimes.analyse(three_regimes.Params.from_preset("cpu"), _edited_copy(tmp_path, three, huge))
    flipped = {c.id: str(c.verdict) for c in edited.claims}
    assert PINNED["02_three_regimes"]["regime3.gradient_huge"] == "partly"
    assert flipped["regime3.gradient_huge"] == "held"
    assert {k: v for k, v in flipped.items() if k != "regime3.gradient_huge"} == \
        {k: v for k, v in PINNED["02_three_regimes"].items() if k != "regime3.gradient_huge"}


def _in_regime_ids(regime: int) -> list[str]:
    grid = reference.sphere_grid()
    majority = grid.groupby("elr")["regime"].agg(reference.majority)
    return list(grid[grid["elr"].map(majority) == regime]["run_id"])


ANGLES, MARGINS, FRACTIONS, STATISTICS = (1.0, 2.0, 3.0, 5.0, 10.0), (0.05, 0.075, 0.1, 0.125, 0.15), (0.25, 0.5), \
    ("median", "mean")  # the rule's range (issue 17: 1°-10°, 0.05-0.15, last quarter or half, median or mean)


def test_labels_that_change_within_the_rules_range_are_the_unstable_ones(findings, grid):
    """Every grid run relabelled by the reference rule at every combination of the range: a run is unstable
    exactly where some combination labels it otherwise than the book's rule, and the chapter says so."""
    seen = {r.run_id: set() for r in grid.itertuples()}
    for angle, margin, fraction, statistic in itertools.product(ANGLES, MARGINS, FRACTIONS, STATISTICS):
        for run in grid.itertuples():
            seen[run.run_id].add(reference.regime(reference.grid_metrics(run.run_id), angle=angle, margin=margin,
                                                  fraction=fraction, statistic=statistic))
    expected = grid.assign(unstable=[len(seen[r.run_id]) > 1 for r in grid.itertuples()])
    ours = findings.run_labels.merge(expected, on=["elr", "seed"], suffixes=("", "_reference"))
    assert len(ours) == len(grid)
    assert (ours["regime"] == ours["regime_reference"]).all()
    assert (ours["unstable"] == ours["unstable_reference"]).all()
    for elr in sorted(set(expected.loc[expected["unstable"], "elr"])):
        assert "/" in findings.tables["regimes"].frame.loc[elr, "regimes"]
