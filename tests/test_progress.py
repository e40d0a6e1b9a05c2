"""Live feedback: a run's progress on a terminal (a bar) and in a log (lines), the resume message, the
``interrupted`` status after Ctrl-C, the epoch ``run`` reports, and the sweep's heartbeat."""

from __future__ import annotations

import time

import pytest

from sphere_regimes import cli, engine, sweep
from sphere_regimes.cli import main
from sphere_regimes.engine import EpochLog, run


@pytest.fixture
def tiny(tiny_config):
    return tiny_config.replace(width=2, train_size=256, epochs=3)


def test_a_log_gets_a_line_per_epoch_and_a_resumed_run_says_from_where(tiny, store, capsys, monkeypatch):
    monkeypatch.setattr(EpochLog, "LOG_SECONDS", 0.0)
    run(tiny, store, progress="log")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "train loss " in lines[0] and "test error " in lines[0] and "ELR 0.01" in lines[0]
    assert "s/epoch, ETA " in lines[0] and lines[-1].endswith("ETA 0s")
    run(tiny.replace(epochs=4), store, progress="log")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "resuming from epoch 3 of 4 (its checkpoint in the store)"
    assert lines[1].startswith("epoch 4/4: ")


def test_a_log_line_comes_at_most_every_log_seconds_and_at_the_last_epoch(tiny, store, capsys, monkeypatch):
    """Deterministic, whatever the machine's speed: a period longer than the run gives the first and the last
    epoch only, a zero period every epoch."""
    monkeypatch.setattr(engine.EpochLog, "LOG_SECONDS", 1e9)
    run(tiny, store, progress="log")
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["epoch 1/3", "epoch 3/3"]
    monkeypatch.setattr(engine.EpochLog, "LOG_SECONDS", 0.0)
    run(tiny.replace(epochs=5), store, progress="log")
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == [
        "resuming from epoch 3 of 5 (its checkpoint in the store)", "epoch 4/5", "epoch 5/5"]


def test_a_terminal_gets_a_bar_and_no_lines(tiny, store, capsys):
    run(tiny, store, progress="bar")
    captured = capsys.readouterr()
    assert captured.out == "" and "test error" in captured.err and "ELR" in captured.err
    run(tiny.replace(epochs=4), store, progress=False)
    assert capsys.readouterr().out == ""  # no progress, no resume message


def test_ctrl_c_marks_the_run_interrupted_and_the_rerun_resumes(tiny, store, capsys, monkeypatch):
    train_epoch = engine._Trainer._train_epoch

    def stop_at_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return train_epoch(self, epoch)

    monkeypatch.setattr(engine._Trainer, "_train_epoch", stop_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run(tiny, store, progress="log")
    status = store.status(tiny)
    assert status.status == "interrupted" and status.epochs_done == 1
    monkeypatch.setattr(engine._Trainer, "_train_epoch", train_epoch)
    capsys.readouterr()
    assert run(tiny, store, progress="log").status.status == "done"
    assert capsys.readouterr().out.startswith("resuming from epoch 1 of 3")


@pytest.mark.parametrize("terminal", [False, True])
def test_run_shows_a_bar_on_a_terminal_lines_elsewhere_and_the_epoch_it_reports(tiny, tmp_path, capsys, monkeypatch,
                                                                                  terminal):
    monkeypatch.setattr(cli, "show_progress", lambda: terminal)
    flags = ["--elr", "0.01", "--width", "2", "--train-size", "256", "--device", "cpu", "--results", str(tmp_path)]
    assert main(["run", *flags, "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert ("epoch 1/3: " in out) is not terminal and "epoch 3: train loss" in out
    assert main(["run", *flags, "--epochs", "2"]) == 0  # the store holds 3 epochs: epoch 2 is reported
    frame = run(tiny.replace(epochs=2), engine.RunStore(tmp_path)).metrics
    assert f"epoch 2: train loss {frame.loc[2, 'train_loss']:.4g}," in capsys.readouterr().out


def test_a_sweep_in_a_log_prints_a_heartbeat_while_runs_are_left(tiny, store, capsys, monkeypatch):
    monkeypatch.setattr(sweep.Progress, "HEARTBEAT_SECONDS", 0.05)
    with sweep.Progress([tiny], store, live=False):
        time.sleep(0.3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "0/1 runs done, waiting for the workers to start (0s), 0/3 epochs, 0 epochs/s, ETA ?"
    assert len(lines) >= 3
    assert lines[-1].startswith("stopped after 0/1 runs") or lines[-1].startswith("computed 0/1 runs")
