"""The committed result store (results/) of the cpu preset: complete, intact, re-executable, and
showing what the three-regimes, conventional-training and fine-tuning chapters say it shows."""

from __future__ import annotations

import pytest
import torch

from sphere_regimes import RunConfig, chapters, paths, regimes, run, verify
from sphere_regimes.engine import load
from sphere_regimes.store import RunStore

COMMITTED = RunStore(paths.REPO_ROOT / "results")


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

