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

from sphere_regimes import RunConfig, chapters, engine, paths, run
from sphere_regimes.batched import check_sweep
from sphere_regimes.chapters.three_regimes import PRECISION_SUMMARIES, precision_agreement
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
    there is a run of the cpu preset or of its bfloat16 validation (presets/bf16-validation.yaml)."""
    store = RunStore(paths.REPO_ROOT / "results")
    planned = {c.run_id for configs in chapters.planned_runs("cpu", store=store).values() for c in configs}
    validation = {c.run_id for c in chapters.planned_runs("bf16-validation", store=store)["02_three_regimes"]}
    folders = {os.path.basename(d) for d in glob.glob(str(paths.REPO_ROOT / "results" / "*"))}
    assert planned <= folders and folders <= planned | validation
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
