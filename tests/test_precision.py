"""Compute precision of a run (``RunConfig.compute_dtype``): bfloat16 autocast trains, keeps the sphere,
changes the numbers by rounding only, leaves the committed ids alone, and what cannot work is refused
in one line. Its bit-identical resume is tested with the float32 one: ``tests/test_engine.py`` (a run
interrupted after epoch 1) and ``tests/test_reliability.py`` (the crash sweep in bfloat16)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pandas as pd
import pytest
import torch

import reference
from sphere_regimes import RunConfig, chapters, engine, paths, run
from sphere_regimes.batched import check_sweep
from sphere_regimes.chapters.three_regimes import (PRECISION_SUMMARIES, precision_agreement, precision_intervals,
                                                   with_bfloat16)
from sphere_regimes.chapters import editions
from sphere_regimes.cli import main
from sphere_regimes.store import RunStore

BF16_ROUNDOFF = torch.finfo(torch.bfloat16).eps / 2  # 2^-8: the largest relative change of one rounding


@pytest.fixture
def bf16_config(tiny_config) -> RunConfig:
    """The tiny run at a small ELR (steps of about a degree: see the closeness test), in bfloat16,
    with sharpness every epoch on 256 images so that every pass runs under autocast."""
    return tiny_config.replace(elr=1e-4, compute_dtype="bfloat16", sharpness_every=1, sharpness_images=256)


def test_the_committed_runs_keep_their_ids():
    """Every run the cpu preset plans (all float32) is still a folder of the committed store, and every folder
    there is a run of the cpu preset, of its first edition (presets/cpu-first-edition.yaml, which its chapters
    compare with and whose bfloat16 validation chapter 02 shows) or of that validation's own preset
    (presets/bf16-validation.yaml)."""
    store = RunStore(paths.REPO_ROOT / "results")
    planned = {c.run_id for configs in chapters.planned_runs("cpu", store=store).values() for c in configs}
    others = {c.run_id for preset in ("bf16-validation", "cpu-first-edition")
              for configs in chapters.planned_runs(preset, store=store).values() for c in configs}
    folders = {os.path.basename(d) for d in glob.glob(str(paths.REPO_ROOT / "results" / "*"))}
    assert planned <= folders and folders <= planned | others
    config = RunConfig(elr=1e-2)
    assert "compute_dtype" not in config.hashed_fields()
    assert config.replace(compute_dtype="bfloat16").run_id != config.run_id
    assert config.replace(compute_dtype="bfloat16").label() == config.label() + " bf16"


def test_a_bfloat16_run_trains_on_the_sphere_with_finite_metrics(bf16_config, store):
    torch.set_num_threads(1)
    frame = run(bf16_config, store).metrics
    assert list(frame.index) == [0, 1, 2]
    assert np.isfinite(frame.loc[1:, ["train_loss_running", "train_loss", "test_loss", "test_error",
                                      "effective_grad_norm", "sharpness", "angle_epoch_deg", "angle_step_rad",
                                      "cos_to_init"]].to_numpy()).all()
    assert frame.loc[2, "train_loss"] < frame.loc[0, "train_loss"]
    # The step and the projection are float32: the initial norm is kept to float32 precision.
    np.testing.assert_allclose(frame["si_norm"], frame.loc[0, "si_norm"], rtol=1e-6)
    assert all(p.dtype == torch.float32 for p in store.load_final(bf16_config).values() if p.is_floating_point())


def test_bfloat16_changes_the_numbers_by_rounding_only(bf16_config, store):
    """bfloat16 keeps 8 significand bits: one rounding changes a number by at most ``u = 2^-8`` (0.4%)
    relative. Autocast rounds the inputs of the four convolutions and of the head, which accumulate in
    float32, and BatchNorm renormalises after each: at the shared initial point the train-mode loss can
    differ by a few such roundings, so the bound is five: ``5u`` (2%). Over the first epoch (4 steps at
    ELR 1e-4, each turning the weights by about ``elr * effective gradient``, asserted below to total
    under 0.1 rad: too little for the two trajectories to part) the running losses stay within a small
    multiple of that: 5%. The numbers must differ (the option does something)."""
    torch.set_num_threads(1)
    bf16 = run(bf16_config, store).metrics
    fp32 = run(bf16_config.replace(compute_dtype="float32"), store).metrics
    assert not bf16.equals(fp32)
    assert bf16.loc[0, "train_loss"] != fp32.loc[0, "train_loss"]
    assert fp32.loc[1, "angle_step_rad"] * 4 < 0.1  # near the starting point: no chaotic amplification
    assert bf16.loc[0, "train_loss"] == pytest.approx(fp32.loc[0, "train_loss"], rel=5 * BF16_ROUNDOFF)
    assert bf16.loc[1, "train_loss_running"] == pytest.approx(fp32.loc[1, "train_loss_running"], rel=0.05)


def test_what_cannot_compute_in_bfloat16_is_refused_in_one_line(tiny_config, tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="compute_dtype 'bfloat16' needs float32 weights") as error:
        tiny_config.replace(dtype="float64", compute_dtype="bfloat16")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="unknown compute_dtype 'float16'"):
        tiny_config.replace(compute_dtype="float16")
    with pytest.raises(ValueError, match="the batched engine computes in float32 only"):
        check_sweep([tiny_config.replace(compute_dtype="bfloat16")])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "an old GPU")
    assert engine.resolve_device("cuda").type == "cuda"
    assert main(["run", "--elr", "0.01", "--device", "cuda", "--compute-dtype", "bfloat16", "--results",
                 str(tmp_path)]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "an old GPU does not support bfloat16" in message


def _summaries(values: dict[str, list[float]], regimes: list[int], elr: float = 1e-3) -> pd.DataFrame:
    frame = pd.DataFrame({"elr": elr, "seed": range(len(regimes)), "regime": regimes})
    for column in PRECISION_SUMMARIES:
        frame[column] = values.get(column, [1.0] * len(regimes))
    return frame


def test_the_precision_rule_passes_inside_the_widened_seed_range_and_fails_outside():
    """float32 seeds span [1, 3] in train loss, so the band is [0, 4] (half the width added on each side)."""
    float32 = _summaries({"train_loss": [1.0, 2.0, 3.0]}, [1, 1, 2])
    inside = precision_agreement(float32, _summaries({"train_loss": [3.9, 3.9, 3.9]}, [2, 1, 2]))
    assert inside["passed"].all()  # mean 3.9 <= 4; labels 1 and 2 both occur among float32's seeds
    outside = precision_agreement(float32, _summaries({"train_loss": [4.2, 4.2, 4.2]}, [1, 1, 1]))
    assert not outside["passed"].any() and not outside["train_loss_inside"].any()
    relabelled = precision_agreement(float32, _summaries({"train_loss": [2.0, 2.0, 2.0]}, [1, 3, 1]))
    assert not relabelled["labels_agree"].any() and not relabelled["passed"].any()


def test_the_shown_intervals_are_the_rule_s():
    """The detail table the chapter shows flags exactly the summaries the rule finds outside."""
    float32 = _summaries({"train_loss": [1.0, 2.0, 3.0], "cos_to_init": [0.5, 0.5, 0.6]}, [1, 1, 1])
    for values in ([3.9] * 3, [4.2] * 3, [-0.1] * 3):
        bfloat16 = _summaries({"train_loss": values, "cos_to_init": [0.7] * 3}, [1, 1, 1])
        detail = precision_intervals(float32, bfloat16).set_index("summary")
        rule = precision_agreement(float32, bfloat16).iloc[0]
        assert all(detail.loc[c, "inside"] == rule[f"{c}_inside"] for c in PRECISION_SUMMARIES)
        assert detail.loc["train_loss", ["allowed_low", "allowed_high"]].tolist() == [0.0, 4.0]


def test_the_bfloat16_grid_swaps_only_the_runs_it_has():
    class Fake:
        def __init__(self, elr, seed, dtype):
            self.config = RunConfig(elr=elr, seed=seed, compute_dtype=dtype)
    grid = [Fake(e, s, "float32") for e in (1e-3, 1e-2) for s in (0, 1)]
    swapped = with_bfloat16(grid, [Fake(1e-2, 1, "bfloat16")])
    assert [r.config.compute_dtype for r in swapped] == ["float32", "float32", "float32", "bfloat16"]
    assert [(r.config.elr, r.config.seed) for r in swapped] == [(r.config.elr, r.config.seed) for r in grid]


def test_the_bfloat16_verdict_of_the_book_recomputed_from_the_store():
    """The bfloat16 validation that the cpu book's chapter 02 shows (its own, or its earlier edition's when it
    trains none), recomputed from metrics.csv and config.json with pandas (``tests/reference.py``: its own regime
    rule and summaries): per ELR, the labels and the six summaries against the float32 seeds' widened range,
    and the verdict the chapter prints."""
    book = chapters.three_regimes.Params.from_preset("cpu")
    params = book if book.precision_elrs else editions.earlier_params(book)
    if params is None or not params.precision_elrs:
        pytest.skip("neither the cpu preset nor its earlier edition lists precision_elrs")
    table = reference.runs()
    grid = table[~reference.drops_last_batch(table) & (table["optimizer"] == "sphere") & (table["constraint"] == "total")
                 & (table["epochs"] == 150)
                 & (table["width"] == 8) & (table["train_size"] == 10000) & table["init_from"].isna()]
    expected = {}
    for elr in params.precision_elrs:
        at_elr = grid[np.isclose(grid["elr"], elr, rtol=1e-12, atol=0)]
        by_dtype = {dtype: [_reference_summary(r.run_id, r.status) for r in frame.itertuples()]
                    for dtype, frame in at_elr.groupby(at_elr["compute_dtype"].fillna("float32"))}
        float32, bfloat16 = pd.DataFrame(by_dtype["float32"]), pd.DataFrame(by_dtype["bfloat16"])
        assert len(float32) == len(bfloat16) == len(params.seeds)
        inside = [float32[c].min() - (float32[c].max() - float32[c].min()) / 2 <= bfloat16[c].mean()
                  <= float32[c].max() + (float32[c].max() - float32[c].min()) / 2 for c in PRECISION_SUMMARIES]
        expected[elr] = set(bfloat16["regime"]) <= set(float32["regime"]) and all(inside)
    findings = chapters.three_regimes.analyse(book)
    shown = findings.tables["precision"].frame
    assert dict(zip(shown["ELR"], shown["passed"] == "yes")) == pytest.approx(expected)
    assert findings.values["precision_passed"] == ("passes" if all(expected.values()) and
                                                   "verdicts change" not in findings.values["precision_md"] else "fails")


def _reference_summary(run_id: str, status: str) -> dict[str, float]:
    """The six summaries of the precision rule and the regime, read from the run's metrics.csv."""
    frame = reference.metrics(run_id)
    last, evaluated = frame.iloc[-1], frame["test_error"].dropna()
    evaluated = evaluated[evaluated.index > 0]
    return {"regime": reference.regime(frame, status=status), "train_loss": last["train_loss"],
            "best_test_error": frame["test_error"].min(),
            "late_test_error": evaluated[evaluated.index > evaluated.index[-1] - 10].mean(),
            "effective_grad_norm": last["effective_grad_norm"], "angle_epoch_deg": last["angle_epoch_deg"],
            "cos_to_init": last["cos_to_init"]}
