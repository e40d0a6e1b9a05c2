"""Reliability: a sweep killed at any moment loses nothing, concurrent processes compute each run
once, and every bad input gets a one-line answer that names what is wrong and what to do."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import crash_sweep
from sphere_regimes import config as config_module
from sphere_regimes import chapters, engine, paths, plans, presets, regimes, run
from sphere_regimes import store as store_module
from sphere_regimes.cli import main
from sphere_regimes.chapters import MissingRunsError, load_results, three_regimes
from sphere_regimes.presets import PresetError
from sphere_regimes.store import RunStore, StoreFormatError

THREE_REGIMES = "02_three_regimes"
REPRODUCIBLE_FILES = ("config.json", "metrics.csv", "status.json")


def _files(root: Path) -> dict[str, bytes]:
    """The reproducible files of every run under ``root``, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for name in REPRODUCIBLE_FILES for p in root.glob(f"*/{name}")}


def _digest(frame) -> str:
    return hashlib.sha256(frame.to_csv().encode()).hexdigest()


# -- crashes --------------------------------------------------------------------------------------

def test_a_sweep_killed_at_every_kind_of_moment_ends_as_if_never_killed(tmp_path, fashion_mnist):
    """SIGKILL during start-up or at random (time), mid-epoch (step), mid metric pass (eval) and
    mid store write (write), resumed each time: the store equals an uninterrupted sweep's bit for
    bit, with no temporary file or lock left (``tests/crash_sweep.py --kills 20`` kills more)."""
    report = crash_sweep.crash_sweep(tmp_path, kills=len(crash_sweep.POINTS), seed=7, log=lambda line: None)
    assert report.problems == []
    assert set(report.kills) == set(crash_sweep.POINTS)


@pytest.mark.slow
def test_a_bfloat16_sweep_killed_at_every_kind_of_moment_ends_as_if_never_killed(tmp_path, fashion_mnist):
    """The same in bfloat16 (``RunConfig.compute_dtype``): autocast keeps the resume bit-identical."""
    report = crash_sweep.crash_sweep(tmp_path, kills=len(crash_sweep.POINTS), seed=7, log=lambda line: None,
                                     compute_dtype="bfloat16")
    assert report.problems == []
    assert set(report.kills) == set(crash_sweep.POINTS)
    configs = [json.loads(p.read_text())["config"] for p in (tmp_path / "reference").glob("*/config.json")]
    assert configs and all(c["compute_dtype"] == "bfloat16" for c in configs)


# -- concurrency ----------------------------------------------------------------------------------

_WAIT_FOR_GO = """
import hashlib, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from sphere_regimes import RunConfig, engine
from sphere_regimes.store import RunStore

store, folder = RunStore(sys.argv[1]), Path(sys.argv[2])
configs = [RunConfig.from_dict(c) for c in {configs}]
(folder / f"ready-{{sys.argv[3]}}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
"""

_ASKER = _WAIT_FOR_GO + """
train = engine._Trainer.train

def counted(self, progress):
    with open(folder / "trainings", "a") as log:
        log.write(self.config.run_id + "\\n")
    return train(self, progress)

engine._Trainer.train = counted
for config in configs:
    frame = engine.run(config, store, progress=False).metrics
    print(config.run_id, hashlib.sha256(frame.to_csv().encode()).hexdigest(), flush=True)
"""

_READER = _WAIT_FOR_GO + """
seen = set()
while not (folder / "stop").exists():
    for config in configs:
        result = engine.load(config, store)
        if result is not None:
            seen.add((config.run_id, hashlib.sha256(result.metrics.to_csv().encode()).hexdigest()))
for run_id, digest in sorted(seen):
    print(run_id, digest)
"""


def _start(code: str, configs, store: RunStore, folder: Path, name: str) -> subprocess.Popen:
    source = code.format(configs=repr([c.to_dict() for c in configs]))
    return subprocess.Popen([sys.executable, "-c", source, str(store.root), str(folder), name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_processes_asking_for_overlapping_runs_compute_each_once_and_read_only_whole_runs(tiny_config, tmp_path):
    """Two processes ask for the same three runs in different orders (both start with the same
    one) while a third reads the store without the lock all along: each run is trained once, both
    askers get the same runs, the reader only ever sees finished runs as they end, and the store
    equals runs computed one after another."""
    configs = [tiny_config.replace(elr=elr) for elr in (1e-2, 3e-2, 1e-1)]
    shared, folder = RunStore(tmp_path / "shared"), tmp_path / "signals"
    folder.mkdir()
    children = [_start(_ASKER, configs, shared, folder, "a"),
                _start(_ASKER, [configs[0], configs[2], configs[1]], shared, folder, "b"),
                _start(_READER, configs, shared, folder, "reader")]
    deadline = time.time() + 300
    while len(list(folder.glob("ready-*"))) < 3 and time.time() < deadline and all(c.poll() is None for c in children):
        time.sleep(0.05)
    (folder / "go").touch()
    asked = [child.communicate(timeout=600) for child in children[:2]]
    (folder / "stop").touch()
    seen = children[2].communicate(timeout=600)
    for child, (out, err) in zip(children, [*asked, seen]):
        assert child.returncode == 0, err
    assert sorted((folder / "trainings").read_text().split()) == sorted(c.run_id for c in configs)

    torch.set_num_threads(1)
    alone = RunStore(tmp_path / "alone")
    expected = {f"{c.run_id} {_digest(run(c, alone).metrics)}" for c in configs}
    assert _files(shared.root) == _files(alone.root)
    for out, _ in asked:
        assert set(out.splitlines()) == expected
    assert set(seen[0].splitlines()) <= expected


# -- bad input: presets and the command line ------------------------------------------------------

@pytest.mark.parametrize("parameters,message", [
    ("{elrs: [0.01, 0.0]}", "elr must be > 0, got 0.0"),
    ("{elrs: [-0.01]}", "elr must be > 0, got -0.01"),
    ("{elrs: [.nan]}", "elr must be a finite number, got nan"),
    ("{elrs: [.inf]}", "elr must be a finite number, got inf"),
    ("{epochs: 0}", "epochs must be a positive integer, got 0"),
    ("{epochs: -3}", "epochs must be a positive integer, got -3"),
    ("{dataset: mnist}", "unknown dataset 'mnist'; choose one of"),
    ("{epochs: '3'}", "parameter 'epochs' must be int, got str '3'"),
    ("{elrs: 0.01}", "parameter 'elrs' must be a list"),
    ("{epoch: 3}", r"unknown parameter(s) ['epoch']; the chapter declares"),
])
def test_a_bad_preset_value_is_a_one_line_error_naming_the_preset_file(tmp_path, monkeypatch, capsys,
                                                                       parameters, message):
    monkeypatch.setattr(paths, "PRESETS_DIR", tmp_path)
    monkeypatch.setenv("SPHERE_REGIMES_RESULTS", str(tmp_path / "results"))
    (tmp_path / "bad.yaml").write_text(f"notebooks:\n  {THREE_REGIMES}: {parameters}\n")
    assert main(["sweep", "bad", "--workers", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("sphere-regimes: error: ")
    assert message in error and str(tmp_path / "bad.yaml") in error


def test_an_unknown_notebook_in_a_preset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PRESETS_DIR", tmp_path)
    (tmp_path / "typo.yaml").write_text("notebooks:\n  02_three_regime: {epochs: 3}\n")
    with pytest.raises(PresetError, match=r"unknown notebook\(s\) \['02_three_regime'\]; the notebooks are .*"
                                          "'02_three_regimes'"):
        chapters.planned_runs("typo")


@pytest.mark.parametrize("arguments,message", [
    (["--elrs", "0"], "elr must be > 0, got 0.0"),
    (["--elrs", "nan"], "elr must be a finite number, got nan"),
    (["--elrs", "inf"], "elr must be a finite number, got inf"),
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--width", "-2"], "width must be a positive integer, got -2"),
])
def test_bad_demo_arguments_are_one_line_errors(tmp_path, capsys, arguments, message):
    assert main(["demo", "--results", str(tmp_path), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error


# -- bad input: the store -------------------------------------------------------------------------

def _damage(store: RunStore, config, name: str, content: bytes | None) -> bytes:
    """Replace (or with ``None`` truncate to half) one file of a run; its previous bytes."""
    path = store.run_dir(config) / name
    before = path.read_bytes()
    path.write_bytes(before[: len(before) // 2] if content is None else content)
    return before


def test_damaged_store_files_are_one_line_errors_from_the_command_line(tiny_preset, capsys):
    """Truncated, corrupt, foreign and old-format files: ``sphere-regimes status`` lists the run as corrupt
    with one line naming the file and exits 1; ``sphere-regimes sweep`` (``make runs``) stops with that line."""
    assert plans.compute(tiny_preset) == []
    store = presets.preset_store(tiny_preset)
    first, second = [c for configs in chapters.planned_runs(tiny_preset).values() for c in configs]
    status = json.loads((store.run_dir(first) / "status.json").read_text())
    damages = [
        ("metrics.csv", None, "metrics.csv does not match the checksum recorded in status.json"),
        ("status.json", b"\x00\xff binary", "status.json is not valid JSON"),
        ("status.json", b"[1, 2, 3]\n", "status.json was not written by sphere_regimes (no 'format' key)"),
        ("status.json", json.dumps({**status, "format": 0}).encode(), "status.json has store format 0, this "
                                                                      "version reads format 1"),
        ("config.json", (store.run_dir(second) / "config.json").read_bytes(), "a foreign or moved file"),
    ]
    capsys.readouterr()
    for name, content, message in damages:
        before = _damage(store, first, name, content)
        assert main(["status", tiny_preset]) == 1
        problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("corrupt ")]
        assert len(problems) == 1 and message in problems[0] and str(store.run_dir(first)) in problems[0]
        assert main(["sweep", tiny_preset, "--workers", "1"]) == 2
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and message in errors[0] and str(store.run_dir(first)) in errors[0]
        (store.run_dir(first) / name).write_bytes(before)
    assert main(["status", tiny_preset]) == 0


def test_a_truncated_checkpoint_fails_its_run_with_a_clear_message_and_the_sweep_goes_on(tiny_preset, monkeypatch,
                                                                                       capsys):
    original = engine._Trainer._train_epoch

    def interrupted_at_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # stands for a SIGKILL: leaves the run "running" at epoch 1
        return original(self, epoch)

    monkeypatch.setattr(engine._Trainer, "_train_epoch", interrupted_at_epoch_2)
    store = presets.preset_store(tiny_preset)
    first, second = [c for configs in chapters.planned_runs(tiny_preset).values() for c in configs]
    with pytest.raises(KeyboardInterrupt):
        run(first, store)
    monkeypatch.setattr(engine._Trainer, "_train_epoch", original)
    _damage(store, first, "resume.pt", None)
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "resume.pt is not a readable checkpoint" in out and "delete it to recompute the run from the start" in out
    assert store.status(first).status == "failed" and store.status(second).status == "done"


def test_a_run_whose_loss_turns_nan_is_recorded_as_diverged_and_the_sweep_goes_on(tiny_preset, monkeypatch, capsys):
    original = engine._Trainer._train_epoch

    def nan_at_epoch_2(self, epoch):
        stats = original(self, epoch)
        if self.config.elr == 0.01 and epoch == 2:
            stats["loss_sum"] = torch.tensor(float("nan"), dtype=torch.float64)
        return stats

    monkeypatch.setattr(engine._Trainer, "_train_epoch", nan_at_epoch_2)
    assert main(["sweep", tiny_preset, "--workers", "1"]) == 0
    assert main(["status", tiny_preset]) == 0
    table = capsys.readouterr().out
    assert "1 diverged" in table and "1 done" in table
    results = _load(tiny_preset)
    diverged = next(r for r in results if r.config.elr == 0.01)
    assert diverged.status.diverged_epoch == 2 and diverged.status.epochs_done == 1
    assert list(diverged.metrics.index) == [0, 1]
    assert [r.status.status for r in results] == ["diverged", "done"]
    summary = regimes.run_summary(results)  # what the chapter's table and regime map read
    assert list(summary["regime"])[0] == 3 and list(summary["status"]) == ["diverged", "done"]
    assert summary.loc[0, "epochs"] == 1 and np.isnan(summary.loc[0, "late_angle_deg"])


def test_runs_of_another_store_format_are_never_read_as_this_versions(tiny_preset, tiny_config, monkeypatch,
                                                                      capsys):
    """A store written by an older version: its runs have other ids (the format is part of the
    hash), so they are never misread; the sweep and the status say so, and reading one directly
    is a clear error."""
    store = presets.preset_store(tiny_preset)
    with monkeypatch.context() as old_version:
        old_version.setattr(config_module, "STORE_FORMAT", 0)
        old_version.setattr(store_module, "STORE_FORMAT", 0)
        old_dir = store.run_dir(tiny_config)
        run(tiny_config, store)
    assert store.run_dir(tiny_config) != old_dir and engine.load(tiny_config, store) is None
    assert main(["status", tiny_preset]) == 0
    out = capsys.readouterr().out
    assert "2 missing" in out
    assert (f"note: 1 run folder(s) in {store.root} hold store format 0, not this version's format 1 "
            f"(e.g. {old_dir.name})") in out
    with pytest.raises(StoreFormatError, match="has store format 0, this version reads format 1"):
        store.read_config(old_dir)


def test_a_preset_that_does_not_match_the_store_computes_its_own_runs_without_mixing(tiny_preset, monkeypatch):
    """The store holds preset "tiny"; a notebook with another preset's parameters finds none of its
    runs (a clear error), the sweep computes them beside the others, which stay untouched, and a
    longer preset extends the shared runs without changing what the shorter one reads."""
    folder = paths.PRESETS_DIR
    text = (folder / "tiny.yaml").read_text()
    (folder / "wide.yaml").write_text(text.replace("width: 2", "width: 3"))
    (folder / "long.yaml").write_text(text.replace("    epochs: 3", "    epochs: 4"))
    store = presets.preset_store(tiny_preset)
    assert plans.compute(tiny_preset) == []
    tiny = _load(tiny_preset)
    files = _files(store.root)

    with pytest.raises(MissingRunsError, match="2 of 2 runs of 02_three_regimes are not in "):
        _load("wide")
    assert plans.compute("wide") == []
    wide = _load("wide")
    assert [r.config.width for r in wide] == [3, 3] and len(list(store.root.iterdir())) == 4
    assert {k: v for k, v in _files(store.root).items() if k in files} == files

    assert plans.compute("long") == []
    assert len(list(store.root.iterdir())) == 4  # same runs, extended
    again = _load(tiny_preset)
    for before, after in zip(tiny, again):
        assert after.config == before.config and after.metrics.equals(before.metrics)
    long = _load("long")
    assert [list(r.metrics.index) for r in long] == [[0, 1, 2, 3, 4]] * 2


def _load(preset: str) -> list:
    """The three-regimes chapter's finished runs under ``preset``, in plan order."""
    store = presets.preset_store(preset)
    return load_results(three_regimes.plan(three_regimes.Params.from_preset(preset), store), store, THREE_REGIMES, preset)


def test_a_run_that_stops_before_its_config_leaves_no_folder_and_a_waiter_locks_the_new_one(store, tiny_config):
    """A failed start (missing data, a bad config) used to leave a folder holding only ``.lock``: the lock's
    holder now removes it, and :meth:`RunStore.remove_stale_locks` removes those earlier versions left."""
    with pytest.raises(RuntimeError):
        with store.lock(tiny_config):
            raise RuntimeError("data not found")
    assert not store.run_dir(tiny_config).exists()
    stale = store.root / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / ".lock").touch()
    (stale / ".status.json.1.tmp").touch()
    with store.lock(tiny_config):
        store.write_config(tiny_config)
    assert store.remove_stale_locks() == [stale] and not stale.exists()
    assert store.run_dir(tiny_config).is_dir()  # a folder with a config stays
