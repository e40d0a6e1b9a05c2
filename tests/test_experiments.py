"""Run plans: the boundary search bisects where the regime changes; the conventional-training grid shares
lr x wd; fine-tuning starts from the three-regimes chapter's stored runs."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from sphere_regimes import chapters, paths, plans, presets
from sphere_regimes.chapters import ParamsError, load_results, three_regimes
from sphere_regimes.conventional import intrinsic_lr


@pytest.mark.parametrize("tiny_preset", [{"bisection_steps": 1}], indirect=True)  # one bisection round
def test_bisection_is_planned_once_the_grid_is_stored_and_compute_runs_it(tiny_preset):
    def planned_elrs() -> list[float]:
        return [c.elr for c in chapters.planned_runs(tiny_preset)["02_three_regimes"]]

    assert planned_elrs() == [0.01, 1.0]  # the next round needs the grid's regimes
    assert plans.compute(tiny_preset) == []
    elrs = planned_elrs()
    assert elrs[:2] == [0.01, 1.0] and len(elrs) == 3
    assert math.isclose(elrs[2], 0.1)  # sqrt(0.01 * 1.0): ELR 1 is a random walk at once, 0.01 is not
    store = presets.preset_store(tiny_preset)
    assert len(list(store.root.iterdir())) == 3  # compute planned again and ran the bisection round


def test_individual_constraint_runs_pair_with_grid_runs_of_the_first_seed():
    values = {"train_size": 256, "width": 2, "epochs": 3, "dense_metric_epochs": 3, "metric_every": 1,
              "sharpness_every": 0, "seeds": [4, 5], "elrs": [0.01, 1.0], "individual_elrs": [1.0]}
    params = three_regimes.Params.from_mapping(values)
    (run,) = three_regimes.individual_configs(params)
    twin = three_regimes.base_config(params, elr=1.0, seed=4)
    assert (run.constraint, run.grouping, run.seed) == ("individual", "layer", 4)
    assert run.replace(constraint="total") == twin  # nothing else differs from its total-constraint twin
    with pytest.raises(ParamsError, match="not in the grid"):
        three_regimes.Params.from_mapping({**values, "individual_elrs": [0.5]})


CHAPTERS = """description: "tiny versions of the conventional-training and fine-tuning chapters, for tests"
notebooks:
  02_three_regimes:
    train_size: 256
    width: 2
    epochs: 3
    dense_metric_epochs: 3
    sharpness_every: {sharpness_every}
    elrs: [0.01, 1.0]
    seeds: [0]
    individual_elrs: []
    pilot_widths: []
    pilot_train_sizes: []
  {chapter}
"""
CONVENTIONAL = """03_conventional_training:
    epochs: 3
    lrs: [0.1, 0.3, 1.0]
    weight_decays: [0.001, 0.003, 0.01]
    af_pairs: [[0.1, 0.001]]
    seeds: [0, 1]"""
FINE_TUNING = """04_fine_tuning:
    pretrain_elrs: []
    pretrain_epochs: {pretrain_epochs}
    finetune_elr: 0.001
    finetune_epochs: 2"""


@pytest.fixture
def chapter_preset(tiny_preset, monkeypatch):
    """Write preset "tiny" with the three-regimes chapter's tiny grid and one more chapter; returns its name."""
    def write(chapter: str, sharpness_every: int = 0) -> str:
        (paths.PRESETS_DIR / "tiny.yaml").write_text(CHAPTERS.format(chapter=chapter, sharpness_every=sharpness_every))
        return tiny_preset
    return write


def test_conventional_grid_shares_lr_wd_and_adds_the_af_pairs(chapter_preset):
    preset = chapter_preset(CONVENTIONAL)
    params = chapters.conventional.Params.from_preset(preset)
    assert (params.af_pairs, params.seeds, params.sphere().width) == (((0.1, 0.001),), (0, 1), 2)
    configs = chapters.planned_runs(preset)["03_conventional_training"]
    assert configs == chapters.conventional.plan(params)
    assert len(configs) == 2 * (9 + 1)
    assert all(c.optimizer == "sgd" and c.momentum == 0 and c.elr is None for c in configs)
    si = [c for c in configs if c.model == "convnet_si" and c.seed == 0]
    products = Counter(intrinsic_lr(c.lr, c.weight_decay) for c in si)
    assert {p: n for p, n in products.items() if n > 1} == {3e-4: 2, 1e-3: 2, 3e-3: 2}
    assert max(products) / min(products) == pytest.approx(100)
    af = [c for c in configs if c.model == "convnet_af"]
    assert [(c.lr, c.weight_decay, c.seed) for c in af] == [(0.1, 0.001, 0), (0.1, 0.001, 1)]
    assert len({c.run_id for c in configs}) == len(configs)


@pytest.mark.parametrize("pretrain_epochs", [0, 4])
def test_fine_tuning_starts_from_the_pretraining_end_points_once_they_are_stored(chapter_preset, pretrain_epochs):
    """``pretrain_epochs = 0`` reuses the three-regimes runs; other values pre-train runs of their own."""
    preset = chapter_preset(FINE_TUNING.format(pretrain_epochs=pretrain_epochs), sharpness_every=2)
    planned = chapters.planned_runs(preset)
    pretraining = planned["04_fine_tuning"]
    same = [c.run_id for c in pretraining] == [c.run_id for c in planned["02_three_regimes"]]
    assert same == (pretrain_epochs == 0)
    assert all(c.epochs == (pretrain_epochs or 3) and c.sharpness_every == (0 if pretrain_epochs else 2)
               for c in pretraining)
    assert plans.compute(preset) == []  # pre-training, then (planned again) fine-tuning from its end points
    configs = chapters.planned_runs(preset)["04_fine_tuning"]
    tuned = [c for c in configs if c.init_from is not None]
    assert [c.init_from for c in tuned] == [c.run_id for c in pretraining]
    assert all(c.elr == 0.001 and c.epochs == 2 and c.dense_metric_epochs == 2 for c in tuned)
    results = {r.config.run_id: r for r in load_results(configs, presets.preset_store(preset))}
    for config in tuned:
        start, end = results[config.run_id].metrics.loc[0], results[config.init_from].final
        assert start["train_loss"] == pytest.approx(end["train_loss"], rel=1e-5)  # the pre-training end point


def test_own_pretraining_needs_a_three_regimes_chapter_that_measures_sharpness(chapter_preset):
    with pytest.raises(presets.PresetError, match="measure no sharpness, so the pre-training runs would be those runs"):
        chapters.planned_runs(chapter_preset(FINE_TUNING.format(pretrain_epochs=4)))


def test_fine_tuning_refuses_to_reuse_a_run_the_budget_study_trains_on(tiny_preset):
    """A reused grid run that the budget study extends ends at ``budget_epochs``: fine-tuning from it would
    start there, not at the grid's epochs, so the preset is refused in one line."""
    text = CHAPTERS.format(chapter=FINE_TUNING.format(pretrain_epochs=0), sharpness_every=2)
    text = text.replace("    pilot_train_sizes: []", "    pilot_train_sizes: []\n    budget_elrs: [0.01]\n    budget_epochs: 5\n    budgets: [3, 5]")
    (paths.PRESETS_DIR / "tiny.yaml").write_text(text)
    with pytest.raises(presets.PresetError, match="budget study trains ELR 0.01 seed 0 to 5 epochs, so fine-tuning "
                                                  "would start there, not at epoch 3"):
        chapters.planned_runs(tiny_preset)
