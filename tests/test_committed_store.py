"""The committed result store (results/) of the cpu preset: complete, intact, re-executable, and
showing what the three-regimes, conventional-training and fine-tuning chapters say it shows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sphere_regimes import RunConfig, chapters, conventional, paths, regimes, run, verify
from sphere_regimes.engine import load
from sphere_regimes.store import RunStore

COMMITTED = RunStore(paths.REPO_ROOT / "results")


@pytest.fixture(scope="module", autouse=True)
def committed_store_env():
    """The cpu preset's plans read results/ (its boundary search plans from the stored grid), whatever
    store another test module (nbval's smoke store) left in SPHERE_REGIMES_RESULTS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPHERE_REGIMES_RESULTS", str(COMMITTED.root))
        yield


def _committed_runs(chapter: str) -> list:
    """Every run the cpu preset plans for ``chapter``, from results/ (all of them must be there)."""
    configs = chapters.planned_runs("cpu", store=COMMITTED)[chapter]
    results = [load(c, COMMITTED) for c in configs]
    missing = [c.label() for c, r in zip(configs, results) if r is None]
    assert not missing, f"the cpu preset's runs of {chapter} are not all committed: {missing}"
    return results


@pytest.fixture(scope="module")
def committed():
    """Every run the cpu preset's three-regimes chapter reads, from results/."""
    return _committed_runs("02_three_regimes")


@pytest.fixture(scope="module")
def three_regimes(committed):
    """The total-constraint runs (grid and boundary search)."""
    return chapters.three_regimes.runs(chapters.three_regimes.Params.from_preset("cpu"), COMMITTED).grid


def test_every_planned_run_is_committed_and_matches_its_checksum(committed):
    for result in committed:  # load() checked metrics.csv against status.json's sha256
        assert result.status.status == "done", result.config.label()
        assert len(result.metrics) == result.config.epochs + 1


@pytest.fixture(scope="module")
def rerun(three_regimes, tmp_path_factory, fashion_mnist):
    """The first two epochs of the first committed run, recomputed from nothing with its own thread count
    (one, as the sweep ran): ``make verify`` on one run."""
    config = three_regimes[0].config
    return verify.rerun_metrics(config, 2, RunStore(tmp_path_factory.mktemp("rerun")),
                                verify.stored_threads(COMMITTED, config))


def test_a_committed_run_re_executes_to_the_same_numbers(three_regimes, rerun):
    """Every rerun epoch at 1e-4 on the machine that made the run, else the initial point at 1e-6
    (see :mod:`sphere_regimes.verify`)."""
    stored = three_regimes[0]
    if verify.made_here(COMMITTED, stored.config):
        column, deviation = verify.compare(stored.metrics, rerun, rtol=1e-4)
    else:
        column, deviation = verify.compare(stored.metrics, rerun.loc[[0]], rtol=verify.INITIAL_RTOL)
    assert deviation <= 1, f"{column} deviates by {deviation:.3g} x the tolerance"


def test_verify_flags_a_tampered_run(three_regimes, rerun):
    """The comparison is not vacuous: one stored number of the initial point moved by 1e-5 relative is caught."""
    tampered = three_regimes[0].metrics.copy()
    tampered.loc[0, "test_error"] *= 1 + 1e-5
    column, deviation = verify.compare(tampered, rerun.loc[[0]], rtol=verify.INITIAL_RTOL)
    assert column == "test_error" and deviation > 1


def test_verify_compares_every_epoch_of_a_run_made_on_this_machine(tmp_path, fashion_mnist):
    """A run trained here records this machine, and its rerun matches every epoch bit for bit."""
    store = RunStore(tmp_path / "store")
    config = RunConfig(train_size=256, width=2, elr=0.01, epochs=2, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run(config, store)
    finally:
        torch.set_num_threads(threads)
    assert verify.made_here(store, config)
    check = verify.reexecute(result, 2, RunStore(tmp_path / "scratch"), threads=1, same_machine=True)
    assert (check.scope, check.epochs, check.worst_deviation) == ("every epoch", 2, 0.0)


def test_verify_samples_one_run_per_regime_and_skips_runs_too_short_to_classify(committed):
    sample = verify.sample_runs(committed, 3)
    assert sorted(regimes.classify(r.metrics) for r in sample) == [1, 2, 3]
    assert all(r.config.epochs > 2 for r in sample)  # never a 2-epoch pilot run


# -- chapter 03: conventional training -------------------------------------------------------------

@pytest.fixture(scope="module")
def conventional_summary(three_regimes):
    """Chapter 03's table of the committed SGD runs, with the fixed-ELR map's regime at each
    equilibrium ELR (as the chapter computes it)."""
    summary = conventional.sgd_summary(_committed_runs("03_conventional_training"))
    sphere = regimes.run_summary(three_regimes)
    summary["map_regime"] = [regimes.regime_at(sphere, elr) if elr > 0 else np.nan for elr in summary["equilibrium_elr"]]
    summary.attrs["boundary_12"] = regimes.regime_map(sphere)[0][0]
    return summary


def test_sgd_runs_of_equal_lr_wd_settle_at_the_same_elr(conventional_summary):
    """Li, Lyu & Arora: the equilibrium depends on lr·wd alone (measured: ratios 1.09, 1.00, 1.05)."""
    si = conventional_summary[conventional_summary["model"] == "convnet_si"]
    spread = conventional.equal_lr_wd_spread(si)
    assert len(spread) == 3
    assert spread["ratio"].max() <= 1.15


def test_the_angular_update_approaches_sqrt_2_lr_wd_from_below(conventional_summary):
    """Within 20% at the high lr·wd, below it where runs converge between destabilisations; never above."""
    si = conventional_summary[conventional_summary["model"] == "convnet_si"]
    assert (si["angle_ratio"] <= 1 + conventional.TOLERANCE).all()
    high = si[si["lr_wd"] >= 3e-3]
    assert len(high) == 3 and ((high["angle_ratio"] - 1).abs() <= conventional.TOLERANCE).all()
    lowest = si.sort_values("lr_wd").iloc[0]
    assert lowest["angle_ratio"] < 0.5


def test_sgd_runs_are_in_the_regime_of_their_equilibrium_elr_or_destabilise_below_the_boundary(conventional_summary):
    placed = conventional_summary[conventional_summary["map_regime"].notna()]
    above = placed[placed["equilibrium_elr"] > conventional_summary.attrs["boundary_12"]]
    assert len(above) >= 3 and (above["regime"] == above["map_regime"]).all()
    mismatched = placed[placed["regime"] != placed["map_regime"]]
    assert ((mismatched["regime"] == 2) & (mismatched["map_regime"] == 1)).all()
    assert (mismatched["late_loss_max"] / mismatched["late_loss_min"] >= 5).all()  # periodic destabilisation


def test_the_af_run_at_the_highest_lr_wd_collapses(conventional_summary):
    af = conventional_summary[conventional_summary["model"] == "convnet_af"].set_index("lr_wd")
    collapsed = af.loc[0.01]
    assert collapsed["status"] == "diverged" and collapsed["regime"] == 3
    assert collapsed["constant_output_from"] < 20 < collapsed["diverged_epoch"]
    assert af.loc[1e-4, "status"] == "done" and af.loc[1e-4, "regime"] == 1


# -- chapter 04: fine-tuning (its claims: tests/test_claims_fine_tuning.py) ---------------------------

@pytest.fixture(scope="module")
def fine_tuning():
    """Every run chapter 04 reads (pre-training and fine-tuning), from results/."""
    return _committed_runs("04_fine_tuning")


def test_every_fine_tuning_run_starts_exactly_where_its_committed_pre_training_ended(fine_tuning):
    """The fine-tuning run's initial point is the pre-training run's final.pt (committed, checksummed):
    its epoch-0 test metrics (eval mode, no randomness) equal the pre-training run's last ones exactly."""
    by_id = {r.config.run_id: r for r in fine_tuning}
    tuned = [r for r in fine_tuning if r.config.init_from is not None]
    assert len(tuned) == len(fine_tuning) / 2 == 18
    for result in tuned:
        source = by_id[result.config.init_from]
        assert COMMITTED.load_final(source.config) is not None, source.config.label()
        start, end = result.metrics.loc[0], source.metrics.loc[source.config.epochs]
        assert (start["test_error"], start["test_loss"]) == (end["test_error"], end["test_loss"])
        assert start["si_norm"] == pytest.approx(end["si_norm"], rel=1e-6)

