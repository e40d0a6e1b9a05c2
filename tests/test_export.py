"""`sphere-regimes export tensorboard`: the event files read back with TensorBoard's own reader hold every
metrics.csv column (step = epoch, empty epochs left out) and the run's hyperparameters; bad input is one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # [dev] has tensorboard
from tensorboard.plugins.hparams import metadata as hparams_metadata

from sphere_regimes import chapters, conventional, export, presets
from sphere_regimes.cli import main
from sphere_regimes.config import RunConfig


def _first(committed_runs, wanted) -> str:
    """The first committed run whose config satisfies ``wanted``."""
    return next(run_id for run_id, text in committed_runs.available.items()
                if wanted(RunConfig.from_dict(json.loads(text)["config"])))


def _read(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return events


def _hparams(events) -> dict:
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)[hparams_metadata.SESSION_START_INFO_TAG]
    values = hparams_metadata.parse_session_start_info_plugin_data(content).hparams
    return {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for name, value in values.items()}


def test_the_event_files_hold_every_metric_and_the_hyperparameters(committed_runs, tmp_path, capsys):
    sphere = _first(committed_runs, lambda c: c.is_sphere and c.init_from is None)
    sgd = _first(committed_runs, lambda c: not c.is_sphere and c.weight_decay > 0 and c.model == "convnet_si")
    store = committed_runs([sphere, sgd])
    out = tmp_path / "tb"
    assert main(["export", "tensorboard", str(out), "--store", str(store)]) == 0
    assert "wrote 2 runs" in capsys.readouterr().out
    for run_id in (sphere, sgd):
        config = RunConfig.from_dict(json.loads((store / run_id / "config.json").read_text())["config"])
        metrics = pd.read_csv(store / run_id / "metrics.csv", index_col="epoch")
        folder = out / export.run_folder_name(config, config.label())
        events = _read(folder)
        assert sorted(events.Tags()["scalars"]) == sorted(metrics.columns)
        for column in metrics.columns:
            recorded = metrics[column].dropna()
            scalars = events.Scalars(column)
            assert [s.step for s in scalars] == list(recorded.index)
            np.testing.assert_array_equal([s.value for s in scalars], recorded.to_numpy(np.float32))
        hparams = _hparams(events)
        assert hparams["run_id"] == run_id and hparams["status"] == "done" and hparams["seed"] == config.seed
        assert hparams["epochs_done"] == config.epochs and hparams["compute_dtype"] == config.compute_dtype
        assert hparams["regime"] in (1, 2, 3) and hparams["constraint"] == config.constraint
        if config.is_sphere:
            assert hparams["elr"] == config.elr and "lr" not in hparams and "equilibrium_elr" not in hparams
        else:
            assert (hparams["lr"], hparams["weight_decay"]) == (config.lr, config.weight_decay) and "elr" not in hparams
            assert hparams["equilibrium_elr"] == pytest.approx(conventional.equilibrium_elr(metrics))
    assert main(["export", "tensorboard", str(out), "--store", str(store)]) == 0  # again: replaced, not doubled
    assert len(_read(folder).Scalars("train_loss")) == metrics["train_loss"].notna().sum()


def test_a_preset_exports_the_runs_it_plans_and_a_corrupt_run_is_left_out_in_one_line(tiny_preset, committed_runs,
                                                                                        tmp_path, capsys):
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0
    store = presets.preset_store(tiny_preset)
    committed_runs.root = store.root  # an unplanned run in the preset's store
    committed_runs([next(iter(committed_runs.available))])
    out = tmp_path / "tb"
    capsys.readouterr()
    assert main(["export", "tensorboard", str(out), "--preset", tiny_preset]) == 0
    planned = chapters.planned_runs(tiny_preset)["02_three_regimes"]
    assert sorted(p.name.rsplit("__", 1)[1] for p in out.iterdir()) == sorted(c.run_id for c in planned)
    (store.run_dir(planned[0]) / "metrics.csv").write_text("epoch,train_loss\n0,1\n")
    assert main(["export", "tensorboard", str(tmp_path / "again"), "--store", str(store.root)]) == 1
    captured = capsys.readouterr()
    assert "wrote 2 runs" in captured.out and "(1 left out)" in captured.out
    assert captured.err.count("\n") == 1 and captured.err.startswith("left out: ") and planned[0].run_id in captured.err


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("sphere-regimes: error: ")
    return error


def test_a_missing_or_empty_store_is_a_one_line_error(tmp_path, capsys):
    out = str(tmp_path / "tb")
    assert "there is no result store at" in _one_line_error(
        ["export", "tensorboard", out, "--store", str(tmp_path / "nowhere")], capsys)
    (tmp_path / "empty").mkdir()
    assert "no runs to export in the store" in _one_line_error(
        ["export", "tensorboard", out, "--store", str(tmp_path / "empty")], capsys)


def test_without_tensorboard_the_error_says_how_to_install_it(committed_runs, tmp_path, monkeypatch, capsys):
    store = committed_runs([next(iter(committed_runs.available))])
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    error = _one_line_error(["export", "tensorboard", str(tmp_path / "tb"), "--store", str(store)], capsys)
    assert "pip install 'sphere-regimes[tensorboard]'" in error
