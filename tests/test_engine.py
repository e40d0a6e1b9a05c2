"""Engine and store: metrics, reuse, determinism, resume and extension equality, failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from sphere_regimes import RunConfig, engine, paths, run
from sphere_regimes import store as store_module
from sphere_regimes.data import DeviceData
from sphere_regimes.engine import RunFailedError, load
from sphere_regimes.factories import build_model
from sphere_regimes.metrics import train_mode_pass
from sphere_regimes.models import si_parameters
from sphere_regimes.store import RunStore, StoreCorruptError, StoreFormatError

REPRODUCIBLE_FILES = ("config.json", "metrics.csv", "status.json")


def _files(store: RunStore, config) -> dict[str, bytes]:
    return {name: (store.run_dir(config) / name).read_bytes() for name in REPRODUCIBLE_FILES}


def test_run_records_the_paper_metrics(tiny_config, store):
    torch.set_num_threads(1)
    result = run(tiny_config, store)
    assert result.status.status == "done" and result.status.epochs_done == 2
    frame = result.metrics
    assert list(frame.index) == [0, 1, 2]
    for column in ("train_loss", "train_error", "test_loss", "test_error", "effective_grad_norm", "si_norm",
                   "elr", "cos_to_init", "angle_epoch_deg", "angle_step_rad", "train_loss_running",
                   "norm/features.0", "elr/features.0"):
        assert column in frame.columns
    assert np.isfinite(frame.loc[1:, ["train_loss", "test_error", "angle_step_rad"]].to_numpy()).all()
    assert (frame.loc[1:, "angle_step_rms_rad"] >= frame.loc[1:, "angle_step_rad"]).all()  # RMS >= mean
    assert np.isnan(frame.loc[0, ["angle_step_rad", "angle_step_rms_rad"]].to_numpy(float)).all()
    assert frame["si_norm"].std() / frame["si_norm"].mean() < 1e-6  # on the sphere
    np.testing.assert_allclose(frame["elr"], tiny_config.elr, rtol=1e-5)
    inverse_elrs = (1 / frame.filter(like="elr/")).sum(axis=1)  # sum_i 1/eta_i = 1/eta (paper §3)
    np.testing.assert_allclose(inverse_elrs, 1 / tiny_config.elr, rtol=1e-5)
    assert frame.loc[0, "cos_to_init"] == 1.0 and frame.loc[2, "cos_to_init"] < 1.0
    assert frame.loc[0, "train_loss"] > frame.loc[2, "train_loss"]
    assert (store.run_dir(tiny_config) / "resume.pt").exists()


def test_finished_run_is_returned_without_recomputation(tiny_config, store, monkeypatch):
    first = run(tiny_config, store)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(engine._Trainer, "train", refuse)
    again = run(tiny_config, store)
    assert again.metrics.equals(first.metrics)
    shorter = run(tiny_config.replace(epochs=1), store)
    assert list(shorter.metrics.index) == [0, 1]
    assert engine.load(tiny_config.replace(epochs=3), store) is None


def test_runs_are_deterministic(tiny_config, tmp_path):
    torch.set_num_threads(1)
    a, b = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    run(tiny_config, a)
    run(tiny_config, b)
    assert _files(a, tiny_config) == _files(b, tiny_config)


def test_extending_a_run_equals_running_it_long(tiny_config, tmp_path):
    torch.set_num_threads(1)
    long_store, extended_store = RunStore(tmp_path / "long"), RunStore(tmp_path / "ext")
    run(tiny_config.replace(epochs=4), long_store)
    run(tiny_config.replace(epochs=2), extended_store)
    run(tiny_config.replace(epochs=4), extended_store)
    assert _files(long_store, tiny_config) == _files(extended_store, tiny_config)
    # Without its checkpoint (a fresh clone of the committed store) the run goes on from its final.pt, equally.
    (extended_store.run_dir(tiny_config) / "resume.pt").unlink()
    run(tiny_config.replace(epochs=5), extended_store)
    run(tiny_config.replace(epochs=5), long_store)
    assert _files(long_store, tiny_config) == _files(extended_store, tiny_config)
    # Without either, it is recomputed from the start, equally.
    for name in ("resume.pt", "final.pt"):
        (extended_store.run_dir(tiny_config) / name).unlink()
    run(tiny_config.replace(epochs=6), extended_store)
    run(tiny_config.replace(epochs=6), long_store)
    assert _files(long_store, tiny_config) == _files(extended_store, tiny_config)


@pytest.mark.parametrize("changes", [{"constraint": "individual", "grouping": "filter_rms"},
                                     {"optimizer": "sgd", "elr": None, "lr": 0.05, "weight_decay": 1e-3}])
def test_a_run_without_its_checkpoint_goes_on_from_its_final_weights_only_when_that_is_exact(
        tiny_config, tmp_path, monkeypatch, changes):
    """Extended from final.pt (no resume.pt), a run without optimizer state between steps ends bit for bit
    as the uninterrupted one and trains only the new epochs; with momentum it is recomputed from the start."""
    torch.set_num_threads(1)
    config = tiny_config.replace(**changes)
    long_store, extended_store = RunStore(tmp_path / "long"), RunStore(tmp_path / "ext")
    run(config.replace(epochs=3), long_store)
    run(config.replace(epochs=2), extended_store)
    (extended_store.run_dir(config) / "resume.pt").unlink()
    trained = []
    original = engine._Trainer._train_epoch
    monkeypatch.setattr(engine._Trainer, "_train_epoch",
                        lambda self, epoch: trained.append(epoch) or original(self, epoch))
    run(config.replace(epochs=3), extended_store)
    assert trained == [3]
    assert _files(long_store, config) == _files(extended_store, config)
    with_momentum = config.replace(optimizer="sgd", elr=None, lr=0.05, weight_decay=1e-3, momentum=0.9)
    run(with_momentum.replace(epochs=1), extended_store)
    (extended_store.run_dir(with_momentum) / "resume.pt").unlink()
    trained.clear()
    run(with_momentum.replace(epochs=2), extended_store)
    assert trained == [1, 2]


def test_an_extended_run_keeps_its_cost_up_to_each_earlier_end(tiny_config, store):
    """The cost of the first 2 epochs of a run extended to 4 is the wall time it had when it ended at 2
    (the three-regimes chapter reads its first 150 epochs of runs that the budget study extends)."""
    short, long = tiny_config.replace(epochs=2), tiny_config.replace(epochs=4)
    run(short, store)
    at_two = store.timing(short)["wall_seconds"]
    run(long, store)
    assert store.wall_seconds(short) == at_two
    assert store.wall_seconds(long) == store.timing(long)["wall_seconds"] > at_two
    assert set(store.timing(long)["wall_seconds_at"]) == {"2", "4"}


def test_with_drop_last_batch_every_train_mode_batch_is_whole_and_the_test_pass_sees_every_image(
        tiny_config, store, monkeypatch):
    """512 = 5·96 + 32 images: each epoch takes 5 steps of 96 images, the train-mode metric pass 5 batches
    of 96 (its batch statistics), the test pass every test image; the running loss is a mean over 480."""
    torch.set_num_threads(1)
    config = tiny_config.replace(drop_last_batch=True, batch_size=96, epochs=1)
    passes = []
    original = engine.metrics.forward

    def recording_forward(model, x, compute_dtype=None):
        passes.append((model.training, len(x)))
        return original(model, x, compute_dtype)

    monkeypatch.setattr(engine.metrics, "forward", recording_forward)
    frame = run(config, store).metrics
    train_mode = [size for training, size in passes if training]
    assert train_mode == [96] * 5 * 3  # metric pass at epoch 0, the epoch's 5 steps, metric pass at epoch 1
    assert sum(size for training, size in passes if not training) == 2 * 10000  # the test set, twice
    wrong = frame.loc[1, "train_error_running"] * 480  # a count of the 480 images trained on
    assert wrong == pytest.approx(round(wrong), abs=1e-6) and frame.loc[1, "train_error_running"] > 0
    assert config.run_id != tiny_config.replace(batch_size=96).run_id
    assert "drop_last_batch" not in tiny_config.hashed_fields()


@pytest.mark.parametrize("changes", [{}, {"compute_dtype": "bfloat16", "sharpness_every": 1, "sharpness_images": 256},
                                     {"drop_last_batch": True, "batch_size": 96}],
                         ids=["float32", "bfloat16-with-sharpness", "whole-batches"])
def test_failure_is_recorded_and_the_rerun_resumes_bit_identically(tiny_config, tmp_path, monkeypatch, changes):
    """Interrupted in epoch 2 (after epoch 1's checkpoint) and resumed: the files equal a run straight
    through, in float32 and in bfloat16 (every pass under autocast, sharpness included)."""
    torch.set_num_threads(1)
    config = tiny_config.replace(epochs=3, **changes)
    clean, crashed = RunStore(tmp_path / "clean"), RunStore(tmp_path / "crashed")
    run(config, clean)
    original = engine._Trainer._train_epoch

    def fail_in_epoch_two(self, epoch):
        if epoch == 2:
            raise RuntimeError("simulated out-of-memory")
        return original(self, epoch)

    monkeypatch.setattr(engine._Trainer, "_train_epoch", fail_in_epoch_two)
    with pytest.raises(RunFailedError, match="simulated out-of-memory"):
        run(config, crashed)
    status = crashed.status(config)
    assert status.status == "failed" and status.epochs_done == 1 and "simulated" in status.error
    monkeypatch.setattr(engine._Trainer, "_train_epoch", original)
    assert run(config, crashed).status.status == "done"
    assert _files(clean, config) == _files(crashed, config)


_CHILD = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from sphere_regimes import RunConfig, run
    from sphere_regimes.store import RunStore
    run(RunConfig.from_dict({config}), RunStore(sys.argv[1]), progress=False)
""")


def _start_child(config, root: Path) -> subprocess.Popen:
    code = _CHILD.format(config=repr(config.to_dict()))
    return subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tiny_config, tmp_path):
    torch.set_num_threads(1)
    config = tiny_config.replace(epochs=4)
    clean, killed = RunStore(tmp_path / "clean"), RunStore(tmp_path / "killed")
    run(config, clean)
    child = _start_child(config, killed.root)
    status_file = killed.run_dir(config) / "status.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if status_file.exists() and json.loads(status_file.read_text())["epochs_done"] >= 2:
            break
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert killed.status(config).status == "running"
    run(config, killed)
    assert _files(clean, config) == _files(killed, config)
    assert not list(killed.run_dir(config).glob("*.tmp")) and not list(killed.run_dir(config).glob(".*.tmp"))


@pytest.mark.slow
def test_a_run_is_marked_running_before_its_metrics_change_and_its_ending_status_is_written_last(
        tiny_config, store, monkeypatch):
    """The writer's half of the store's read protocol: no reader sees an ended status beside
    changing metrics, and nothing is written after the status that ends a run."""
    run(tiny_config, store)
    (store.run_dir(tiny_config) / "resume.pt").unlink()  # the extension restarts at epoch 0: metrics.csv shrinks
    writes = []
    write = store_module.atomic_write_bytes

    def record(path, payload):
        writes.append((path.name, store.status(tiny_config).status))
        write(path, payload)

    monkeypatch.setattr(store_module, "atomic_write_bytes", record)
    run(tiny_config.replace(epochs=3), store)
    assert {status for name, status in writes if name == "metrics.csv"} == {"running"}
    assert [name for name, _ in writes[-2:]] == ["timing.json", "status.json"]


@pytest.mark.slow
def test_a_reader_never_mixes_two_versions_of_a_run_being_extended(tiny_config, store, monkeypatch):
    """``load`` without the lock while another process extends the run between its reads of the
    status and of the metrics: it gets the run as it ended, not a checksum error or a mixed table."""
    short = run(tiny_config, store)
    metrics_csv = store.run_dir(tiny_config) / "metrics.csv"
    read_bytes, extended = Path.read_bytes, []

    def extend_then_read(path):
        if path == metrics_csv and not extended:
            extended.append(path)
            run(tiny_config.replace(epochs=3), store)  # "another process", right after the reader took the status
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", extend_then_read)
    again = engine.load(tiny_config, store)
    assert extended and again.status.epochs_done == 3
    pd.testing.assert_frame_equal(again.metrics, short.metrics)


def test_a_second_process_waits_for_the_run_lock(tiny_config, store):
    with store.lock(tiny_config):
        child = _start_child(tiny_config, store.root)
        time.sleep(3)
        assert child.poll() is None, child.communicate()
        assert store.status(tiny_config) is None  # nothing written while we hold the lock
    assert child.wait(timeout=120) == 0, child.communicate()
    assert store.status(tiny_config).status == "done"


def test_train_mode_pass_matches_a_naive_loop_and_leaves_training_state_alone(tiny_config, fashion_mnist):
    data = DeviceData(fashion_mnist, torch.device("cpu"), train_size=300)
    model = build_model(tiny_config, 1, 10)
    si = list(si_parameters(model).values())
    for p in si:
        p.grad = torch.full_like(p, 0.5)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    measured = train_mode_pass(model, data, si, batch_size=128)
    for key, value in model.state_dict().items():
        assert torch.equal(value, buffers[key]), key
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in si)
    losses, wrong, grad_norms = [], 0, []
    w_norm = torch.sqrt(sum((p.detach() ** 2).sum() for p in si))
    for start in range(0, 300, 128):
        fresh = build_model(tiny_config, 1, 10).train()
        x, y = data.train_x[start:start + 128], data.train_y[start:start + 128]
        logits = fresh(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        grads = torch.autograd.grad(loss / len(y), list(si_parameters(fresh).values()))
        grad_norms.append(float(torch.sqrt(sum((g ** 2).sum() for g in grads)) * w_norm))
        losses.append(float(loss.detach()))
        wrong += int((logits.argmax(1) != y).sum())
    assert measured.train_loss == pytest.approx(sum(losses) / 300, rel=1e-6)
    assert measured.train_error == wrong / 300
    assert measured.effective_grad_norm == pytest.approx(np.mean(grad_norms), rel=1e-5)


def test_nan_loss_is_recorded_as_diverged(fashion_mnist, store):
    from sphere_regimes import RunConfig

    config = RunConfig(model="convnet_af", optimizer="sgd", lr=1e30, train_size=256, width=4, epochs=3,
                       device="cpu")
    result = run(config, store)
    assert result.status.status == "diverged"
    assert result.status.diverged_epoch == 1 and result.status.epochs_done == 0
    assert list(result.metrics.index) == [0]
    assert run(config, store).status.status == "diverged"  # not retried
    assert result.status.diverged_reason == "the loss became NaN or inf"


def test_weights_collapsing_to_norm_zero_are_recorded_as_diverged(fashion_mnist, store, monkeypatch):
    """SGD + wd at a large lr·wd can decay the last layer away; the dead net's SI weights then shrink
    geometrically until their float32 norm underflows to 0 (a cpu-preset run's did at epoch 78). Here
    the collapse is forced at epoch 2: the run ends ``diverged`` with the reason, its epochs kept."""
    original = engine._Trainer._train_epoch

    def collapse_at_epoch_2(self, epoch):
        stats = original(self, epoch)
        if epoch == 2:
            with torch.no_grad():
                for weight in self.si_list:
                    weight.zero_()
        return stats

    monkeypatch.setattr(engine._Trainer, "_train_epoch", collapse_at_epoch_2)
    config = RunConfig(model="convnet_af", optimizer="sgd", lr=0.1, weight_decay=1e-3, train_size=256, width=4,
                       epochs=3, device="cpu")
    result = run(config, store)
    assert result.status.status == "diverged" and result.status.diverged_epoch == 2
    assert "collapsed" in result.status.diverged_reason and "features.0" in result.status.diverged_reason
    assert list(result.metrics.index) == [0, 1] and np.isfinite(result.metrics["elr"]).all()
    assert run(config, store).status.status == "diverged"  # not retried


@pytest.mark.slow
def test_corrupt_store_files_get_clear_errors(tiny_config, store):
    run(tiny_config, store)
    folder = store.run_dir(tiny_config)
    metrics = (folder / "metrics.csv").read_bytes()
    (folder / "metrics.csv").write_bytes(metrics[:-20])
    with pytest.raises(StoreCorruptError, match="metrics.csv"):
        run(tiny_config, store)
    (folder / "metrics.csv").write_bytes(metrics)
    config_text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config_text[: len(config_text) // 2])
    with pytest.raises(StoreCorruptError, match="config.json is not valid JSON"):
        run(tiny_config, store)
    (folder / "config.json").write_text(config_text.replace('"format": 1', '"format": 0'))
    with pytest.raises(StoreFormatError, match="store format 0"):
        run(tiny_config, store)
    foreign = json.loads(config_text)
    foreign["config"]["seed"] = 99
    (folder / "config.json").write_text(json.dumps(foreign))
    with pytest.raises(StoreCorruptError, match="foreign"):
        run(tiny_config, store)
    (folder / "config.json").write_text(config_text)
    assert run(tiny_config, store).status.status == "done"
    (store.root / "notes.txt").write_text("not a run")
    with pytest.raises(StoreCorruptError, match="notes.txt"):
        store.runs()


@pytest.mark.slow
def test_fine_tuning_starts_where_the_pre_training_ended(tiny_config, store, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "WORK_DIR", tmp_path / "work")
    pre = run(tiny_config, store)
    tune = tiny_config.replace(elr=1e-3, epochs=2, init_from=tiny_config.run_id)
    tuned = run(tune, store).metrics
    for column in ("train_loss", "test_error", "effective_grad_norm", "si_norm"):
        assert tuned.loc[0, column] == pytest.approx(pre.metrics.loc[tiny_config.epochs, column], rel=1e-6)
    assert tuned.loc[0, "cos_to_init"] == 1  # measured from the fine-tuning start
    # a fresh clone has the pre-training metrics but not its checkpoint: it is recomputed and must match
    fresh = tmp_path / "fresh"
    shutil.copytree(store.root, fresh, ignore=shutil.ignore_patterns("resume.pt", ".lock"))
    shutil.rmtree(fresh / tune.run_id)
    pd.testing.assert_frame_equal(run(tune, RunStore(fresh)).metrics, tuned)


def test_fine_tuning_from_another_network_or_an_unfinished_run_is_refused(tiny_config, store):
    run(tiny_config, store)
    with pytest.raises(ValueError, match="width"):
        run(tiny_config.replace(width=8, init_from=tiny_config.run_id), store)
    with pytest.raises(ValueError, match="no such run"):
        run(tiny_config.replace(init_from="0123456789abcdef"), store)
    with pytest.raises(ValueError, match="16-hex-digit"):
        tiny_config.replace(init_from="last-run")


def test_a_done_run_stores_its_final_weights_and_fine_tuning_starts_from_them(tmp_path, fashion_mnist):
    """final.pt (checksummed in status.json) is the end point a fine-tuning run loads: equal to the
    model at the last epoch, enough without resume.pt, and a damaged copy is a clear error."""
    store = RunStore(tmp_path)
    source = RunConfig(train_size=256, width=2, elr=0.01, epochs=2, device="cpu")
    run(source, store)
    final = store.load_final(source)
    assert all(torch.equal(final[name], value) for name, value in store.load_checkpoint(source)["model"].items())
    (store.run_dir(source) / "resume.pt").unlink()
    tuned = run(source.replace(elr=0.001, epochs=1, init_from=source.run_id), store)
    assert tuned.metrics.loc[0, "train_loss"] == pytest.approx(load(source, store).final["train_loss"], rel=1e-5)
    path = store.run_dir(source) / "final.pt"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(StoreCorruptError, match="final.pt does not match the checksum recorded in status.json"):
        store.load_final(source)
