"""The command line: one run, sweep and status of a preset's planned runs, and one-line errors."""

from __future__ import annotations

import pytest

from sphere_regimes import paths, plans
from sphere_regimes.store import RunStatus
from sphere_regimes.cli import main


def test_status_before_and_after_a_sweep(tiny_preset, capsys):
    assert main(["status", tiny_preset]) == 0
    assert "2 missing" in capsys.readouterr().out
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert progress[0].startswith("[1/2]") and progress[1].startswith("[2/2]")  # one line per run (not a TTY)
    assert "epochs/s" in progress[1] and progress[1].endswith("ETA 0s)")
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0  # nothing left to do
    out = capsys.readouterr().out
    assert "0 to compute" in out
    assert main(["status", tiny_preset]) == 0
    table = capsys.readouterr().out
    assert "2 done" in table
    rows = [line for line in table.splitlines() if line.startswith("02_three_regimes")]
    regimes = [line.split()[4] for line in rows]  # notebook, run, state, epochs, regime, label...
    assert regimes[0] in ("1", "2") and regimes[1] == "3"  # ELR 1.0 is a random walk at once


def test_status_shows_runs_too_short_to_classify_without_a_regime(tiny_preset, capsys):
    presets = paths.PRESETS_DIR
    short = (presets / "tiny.yaml").read_text().replace("dense_metric_epochs: 3", "dense_metric_epochs: 1")
    (presets / "short.yaml").write_text(short)  # full metrics at epochs 1 and 3 only: too few for a regime
    assert main(["sweep", "short", "--workers", "1"]) == 0
    assert main(["status", "short"]) == 0
    table = capsys.readouterr().out
    rows = [line.split() for line in table.splitlines() if line.startswith("02_three_regimes")]
    assert [row[2:5] for row in rows] == [["done", "3/3", "convnet_si-2"]] * 2  # no regime column value
    assert "2 done" in table


def test_unknown_preset_is_a_one_line_error(capsys):
    assert main(["status", "no-such-preset"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "unknown preset 'no-such-preset'" in error


def test_the_paper_preset_fails_fast_without_cifar(tmp_path, monkeypatch, capsys):
    """Here CIFAR-10 is absent: the sweep stops at once with the one-line missing-data error."""
    monkeypatch.setenv("SPHERE_REGIMES_DATA", str(tmp_path / "no-data"))
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "no-data")
    monkeypatch.setenv("SPHERE_REGIMES_RESULTS", str(tmp_path / "results"))
    assert main(["sweep", "paper", "--workers", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "cifar10 data not found" in error and "torchvision.datasets.CIFAR10" in error


def test_status_shows_diverged_and_failed_runs(tiny_preset, capsys):
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0
    store = plans.preset_store(tiny_preset)
    low, high = plans.planned_runs(tiny_preset)["02_three_regimes"]
    store.write_status(low, RunStatus("failed", 1, error="RuntimeError: out of memory"))
    store.write_status(high, RunStatus("diverged", 2, diverged_epoch=3, metrics_sha256=store.metrics_digest(high)))
    capsys.readouterr()
    assert main(["status", tiny_preset]) == 0
    table = capsys.readouterr().out
    assert "1 diverged, 1 failed" in table
    assert f"failed {low.run_id}: RuntimeError: out of memory" in table
    assert main(["status", tiny_preset, "--only", "02"]) == 0


@pytest.mark.slow
def test_one_run_from_flags_and_from_a_preset(tiny_preset, tmp_path, capsys):
    flags = ["--elr", "0.01", "--width", "2", "--train-size", "256", "--epochs", "3", "--device", "cpu"]
    assert main(["run", *flags, "--results", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "convnet_si-2 fashion_mnist ELR 0.01 (total) seed 0" in out and "epoch 3: train loss" in out
    assert "regime " in out
    planned = plans.planned_runs(tiny_preset)["02_three_regimes"][1]
    assert main(["run", "--preset", tiny_preset, "--run", planned.run_id[:6]]) == 0
    assert plans.preset_store(tiny_preset).status(planned).status == "done"


@pytest.mark.parametrize("argv, message", [
    (["run"], "say how to train: --elr X"),
    (["run", "--elr", "0.1", "--lr", "0.1"], "give one of them"),
    (["run", "--elr", "-1"], "elr must be > 0"),
    (["run", "--preset", "tiny", "--run", "zz"], "no planned run of preset 'tiny' has an id starting with 'zz'"),
    (["sweep", "tiny", "--only", "99"], "chapter '99' names no chapter with runs in preset 'tiny'"),
    (["sweep", "tiny", "--address", "127.0.0.1:1"], "add --executor ray"),
    (["sweep", "tiny", "--threads", "0"], "threads must be a positive integer"),
])
def test_bad_input_is_a_one_line_error(tiny_preset, argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error
