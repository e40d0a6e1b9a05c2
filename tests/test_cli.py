"""The command line: sweep and status of a preset's planned runs, and one-line errors."""

from __future__ import annotations


from sphere_regimes import paths
from sphere_regimes.cli import main


def test_status_before_and_after_a_sweep(tiny_preset, capsys):
    assert main(["status", tiny_preset]) == 0
    assert "2 missing" in capsys.readouterr().out
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0
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
