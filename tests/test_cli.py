"""The command line: one run, sweep and status of a preset's planned runs, and one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

from sphere_regimes import chapters, paths, presets
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
    store = presets.preset_store(tiny_preset)
    low, high = chapters.planned_runs(tiny_preset)["02_three_regimes"]
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
    planned = chapters.planned_runs(tiny_preset)["02_three_regimes"][1]
    assert main(["run", "--preset", tiny_preset, "--run", planned.run_id[:6]]) == 0
    assert presets.preset_store(tiny_preset).status(planned).status == "done"


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


def test_ls_lists_every_run_goes_on_past_a_corrupt_one_and_removes_stale_locks(tmp_path, committed_runs, capsys):
    import json
    store = committed_runs(sorted(committed_runs.available)[:3])
    good, bad, other = sorted(p.name for p in store.iterdir())
    (store / bad / "metrics.csv").write_text("epoch,train_loss\n0,1\n")
    (store / "0123456789abcdef").mkdir()
    (store / "0123456789abcdef" / ".lock").touch()  # a run that never started
    assert main(["ls", "--store", str(store)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "removed" in captured.err and not (store / "0123456789abcdef").exists()
    assert [line.split()[:2] for line in lines[1:4]] == [[good, "done"], [bad, "corrupt"], [other, "done"]]
    problem = next(line for line in lines if line.startswith(f"corrupt {bad}: "))
    assert "does not match the checksum" in problem and f"delete the folder {store / bad}" in problem
    assert "3 runs in" in lines[5] and "1 corrupt, 2 done" in lines[5]
    assert main(["ls", "--store", str(store), "--status", "done", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["run"] for row in rows] == [good, other] and all(row["train_loss"] > 0 for row in rows)


def test_committed_runs_are_restored_with_git_and_fine_tuning_runs_say_what_they_are(capsys):
    from sphere_regimes import plans
    from sphere_regimes.store import RunStore, recompute_advice
    store = RunStore(paths.REPO_ROOT / "results")
    run_dir = next(p for p in sorted(store.root.iterdir()) if (p / "config.json").exists())
    assert recompute_advice(run_dir) == f"it is committed: restore it with `git checkout -- results/{run_dir.name}`"
    tuned = [c for _, c, _ in store.entries() if c is not None and c.init_from is not None]
    if tuned:
        source = store.read_config(store.root / tuned[0].init_from)
        assert f"pre-trained at ELR {source.elr:g} for {source.epochs} → ELR {tuned[0].elr:g}" in \
            plans.describe(tuned[0], store)


def test_sgd_runs_say_their_lr_weight_decay_and_equilibrium_elr_and_get_their_regime():
    from sphere_regimes import conventional, engine, plans
    from sphere_regimes.store import RunStore
    store = RunStore(paths.REPO_ROOT / "results")
    loaded = (engine.load(c, store) for _, c, _ in store.entries()
              if c is not None and not c.is_sphere and c.weight_decay > 0)
    sgd = [r for r in loaded if r is not None]  # finished: a working tree's store may hold a run in progress
    assert {r.status.status for r in sgd} >= {"done", "diverged"}  # the committed chapter 03
    for result in sgd:
        config = result.config
        row = plans.run_row(config, store)
        assert f"SGD lr {config.lr:g} wd {config.weight_decay:g}" in row["label"]
        if row["state"] == "done":
            elr = conventional.equilibrium_elr(result.metrics)
            assert row["label"].endswith(f", equilibrium ELR {elr:.3g}") and row["regime"] in (1, 2, 3)
        else:
            assert row["label"].endswith(", diverged: no equilibrium ELR")


def test_status_lists_a_corrupt_run_with_its_problem_and_goes_on(tiny_preset, capsys):
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0
    store = presets.preset_store(tiny_preset)
    low, high = chapters.planned_runs(tiny_preset)["02_three_regimes"]
    (store.run_dir(low) / "status.json").write_text("{not json")
    capsys.readouterr()
    assert main(["status", tiny_preset]) == 1
    table = capsys.readouterr().out
    assert "1 corrupt, 1 done" in table and f"corrupt {low.run_id}: " in table and "not valid JSON" in table
    assert main(["ls"]) == 1  # the store of SPHERE_REGIMES_RESULTS
    assert f"corrupt {low.run_id}: " in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["run", "--elr", "-1e-3"], "argument --elr: expected one argument (a value that starts with '-' goes after '='"),
    (["run", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    (["ls", "--chapter", "02"], "--chapter lists the runs a chapter plans under a preset: add --preset PRESET"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_usage_errors_are_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("sphere-regimes: error: ") and message in error


def test_claims_against_an_earlier_edition_lists_every_verdict_of_both(tiny_preset, tmp_path, capsys):
    """A second edition "tiny2" of the tiny preset moves the ELR 1.0 to 0.5: its two chapter-02 runs are new,
    and the command lists every claim with both verdicts and writes both measurements."""
    presets = paths.PRESETS_DIR
    (presets / "tiny2.yaml").write_text((presets / "tiny.yaml").read_text().replace("1.0]", "0.5]")
                                        .replace("notebooks:", "earlier_edition: tiny\nnotebooks:", 1))
    for preset in ("tiny", "tiny2"):
        assert main(["sweep", preset, "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["claims", "tiny2", "--against", "tiny", "--csv", str(tmp_path / "both.csv")]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "both.csv")
    assert set(table.columns) == {"claim", "earlier", "now", "earlier_ours", "ours", "changed"}
    assert list(table["claim"]) == [c.id for c in chapters.ledger("tiny2").claims]
    assert f"{int(table['changed'].sum())} of {len(table)} verdicts differ between presets 'tiny' and 'tiny2'" in out
