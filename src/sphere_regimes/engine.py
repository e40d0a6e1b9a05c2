"""Training engine: runs a :class:`RunConfig` to completion through the result store.

:func:`run` returns a finished run from the store without recomputation, resumes an
unfinished one from its checkpoint, and extends a finished one when more epochs are asked
for. A resumed run ends bit-identical to an uninterrupted one on the same machine with the
same thread count: batch order and augmentation come from ``(seed, epoch)`` generators, the
metric passes leave the training state untouched, and the checkpoint holds the rest.

A loss that turns NaN or inf, or scale-invariant weights that collapse to norm 0 (weight decay
shrinking a net whose gradient has died, as SGD + wd does at a large lr·wd once the trainable last
layer has decayed away: the ELR ``lr / ||w||^2`` is then infinite), ends the run with status
``diverged``, the epoch and the reason; any other exception is recorded as ``failed`` with its
message and raised as :class:`RunFailedError`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import metrics, paths
from .config import RunConfig
from .data import DeviceData, epoch_generator, load_raw
from .factories import build_model, make_optimizer
from .models import si_parameters
from .optim import euclidean_lr
from .store import RunResult, RunStatus, RunStore, git_sha, machine_id, package_version


class RunFailedError(RuntimeError):
    """A run stopped on an error; its status in the store is ``failed`` with the message."""


def resolve_device(name: str, compute_dtype: str = "float32") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; a ``ValueError`` for a CUDA GPU that cannot
    compute in ``compute_dtype`` (bfloat16 needs ``torch.cuda.is_bf16_supported()``)."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device; use device='auto' or 'cpu'")
    if compute_dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"compute_dtype 'bfloat16' asked for, but {torch.cuda.get_device_name(device)} does not "
                         "support bfloat16; use compute_dtype 'float32'")
    return device


def autocast_dtype(config: RunConfig) -> torch.dtype | None:
    """The dtype the passes of ``config`` run in under autocast, ``None`` for none (the weights' dtype)."""
    return None if config.compute_dtype == "float32" else getattr(torch, config.compute_dtype)


PROGRESS_MODES = ("bar", "log", "off")


def show_progress() -> bool:
    """Progress bars on an interactive terminal, never under CI."""
    return not os.environ.get("CI") and sys.stderr.isatty()


def progress_mode(progress: bool | str | None) -> str:
    """``"bar"`` (a tqdm bar on stderr), ``"log"`` (lines on stdout, see :class:`EpochLog`) or ``"off"``:
    ``True`` is a bar, ``False`` nothing, ``None`` a bar on an interactive terminal and nothing elsewhere."""
    if progress is None:
        return "bar" if show_progress() else "off"
    if isinstance(progress, bool):
        return "bar" if progress else "off"
    if progress not in PROGRESS_MODES:
        raise ValueError(f"unknown progress {progress!r}; choose one of {list(PROGRESS_MODES)}, True, False or None")
    return progress


def duration(seconds: float) -> str:
    """``1h05m``, ``4m12s`` or ``37s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def run(config: RunConfig, store: RunStore | None = None, progress: bool | str | None = None) -> RunResult:
    """The finished run of ``config``: from the store, resumed, extended or computed. ``progress``: see
    :func:`progress_mode`; a run that goes on from a checkpoint says so, unless ``progress`` is off."""
    mode = progress_mode(progress)
    store = store if store is not None else RunStore()
    with store.lock(config):
        status, frame = store.read_run(config)
        if status is not None and _is_finished(status, config):
            return RunResult(config, status, frame)
        return _Trainer(config, store).train(mode)


def load(config: RunConfig, store: RunStore | None = None) -> RunResult | None:
    """The stored run of ``config`` if it has reached ``config.epochs`` (or diverged), else ``None``."""
    store = store if store is not None else RunStore()
    status, frame = store.read_run(config)
    if status is None or not _is_finished(status, config):
        return None
    return RunResult(config, status, frame)


_SAME_NETWORK = ("dataset", "train_size", "model", "width", "depth", "head_norm", "head_seed", "dtype")


def pretrained_state(config: RunConfig, store: RunStore) -> dict[str, torch.Tensor]:
    """Model state at the end of run ``config.init_from`` (the start of a fine-tuning run).

    Taken from that run's final.pt (committed for the runs a chapter fine-tunes from), else from its
    resume checkpoint; when the store has neither (a run finished before final.pt existed), the run is
    recomputed in a scratch store (``_work/pretrained-rerun``) and must reproduce the stored metrics
    bit for bit, which holds only on the machine and thread count that made it.
    """
    source_dir = store.root / config.init_from
    if not (source_dir / "config.json").exists():
        raise ValueError(f"init_from {config.init_from}: no such run in {store.root}; compute the pre-training "
                         "run first")
    source = store.read_config(source_dir)
    different = [f for f in _SAME_NETWORK if getattr(source, f) != getattr(config, f)]
    if different:
        raise ValueError(f"init_from {config.init_from} trained another network or data ({', '.join(different)} "
                         "differ); fine-tuning must keep them")
    finished = load(source, store)
    if finished is None or finished.status.status != "done":
        raise ValueError(f"init_from {config.init_from} ({source.label()}) has not finished; compute it first")
    final = store.load_final(source)
    if final is not None:
        return final
    checkpoint = store.load_checkpoint(source)
    if checkpoint is None or int(checkpoint["epoch"]) != source.epochs:
        checkpoint = _recompute_checkpoint(source, store, finished.status.metrics_sha256)
    return checkpoint["model"]


def _recompute_checkpoint(source: RunConfig, store: RunStore, metrics_sha256: str) -> dict[str, Any]:
    scratch = RunStore(paths.WORK_DIR / "pretrained-rerun")
    rerun = run(source, scratch)
    if rerun.status.metrics_sha256 != metrics_sha256:
        raise RuntimeError(f"recomputing {source.label()} to fine-tune from it did not reproduce its stored metrics "
                           f"(other machine or thread count?); its stored run is in {store.run_dir(source)}: bring its final.pt "
                           "from the machine that made it, or pre-train anew (another pretrain_epochs)")
    return scratch.load_checkpoint(source)


class EpochLog:
    """A run's progress: a tqdm bar (loss, test error, ELR) in mode ``"bar"``; in mode ``"log"`` (output
    that is not a terminal: a log file, a pipe) one line on stdout after the first epoch trained here,
    then after each epoch that ends at least :attr:`LOG_SECONDS` after the previous line, and after the
    last one, so a log shows a line at least once a minute whenever an epoch takes less than that::

        epoch 3/10: train loss 0.489, test error 0.250, ELR 0.007, 58.1 s/epoch, ETA 6m47s
    """

    LOG_SECONDS = 30.0

    def __init__(self, config: RunConfig, mode: str, start_epoch: int) -> None:
        self.config = config
        self.mode = mode
        self.start_epoch = start_epoch
        self.start = self.last_line = time.monotonic()
        self.lines = 0
        self.bar = tqdm(total=config.epochs, initial=start_epoch, disable=mode != "bar", desc=config.label(),
                        leave=False)
        if start_epoch > 0 and mode != "off":
            print(f"resuming from epoch {start_epoch} of {config.epochs} (its checkpoint in the store)", flush=True)

    def epoch(self, row: dict[str, float]) -> None:
        """Report the epoch whose metric row is ``row``."""
        figures = _figures(row)
        self.bar.update(1)
        self.bar.set_postfix_str(", ".join(f"{name} {value}" for name, value in figures.items()))
        now, epoch = time.monotonic(), int(row["epoch"])
        due = self.lines == 0 or now - self.last_line >= self.LOG_SECONDS or epoch == self.config.epochs
        if self.mode != "log" or not due:
            return
        per_epoch = (now - self.start) / (epoch - self.start_epoch)
        eta = duration(per_epoch * (self.config.epochs - epoch))
        print(f"epoch {epoch}/{self.config.epochs}: " + ", ".join(f"{name} {value}" for name, value in figures.items())
              + f", {per_epoch:.3g} s/epoch, ETA {eta}", flush=True)
        self.last_line, self.lines = now, self.lines + 1

    def close(self) -> None:
        self.bar.close()


def _figures(row: dict[str, float]) -> dict[str, str]:
    """The figures a progress report shows: train loss (the full pass, else the running mean over the
    epoch's steps), test error (when evaluated) and the ELR."""
    full = math.isfinite(row["train_loss"])
    figures = {"train loss" if full else "running loss": f"{row['train_loss' if full else 'train_loss_running']:.4g}"}
    if math.isfinite(row["test_error"]):
        figures["test error"] = f"{row['test_error']:.3f}"
    figures["ELR"] = f"{row['elr']:.3g}"
    return figures


def _is_finished(status: RunStatus, config: RunConfig) -> bool:
    return status.status == "diverged" or (status.status == "done" and status.epochs_done >= config.epochs)


class _Trainer:
    def __init__(self, config: RunConfig, store: RunStore) -> None:
        self.config = config
        self.store = store
        self.device = resolve_device(config.device, config.compute_dtype)
        self.compute_dtype = autocast_dtype(config)
        dtype = getattr(torch, config.dtype)
        raw = load_raw(config.dataset)
        self.data = DeviceData(raw, self.device, dtype, config.train_size, config.augment,
                               drop_last_batch=config.drop_last_batch)
        self.model = build_model(config, raw.info.in_channels, raw.info.num_classes).to(
            self.device, dtype, memory_format=torch.channels_last)
        if config.init_from is not None:
            self.model.load_state_dict(pretrained_state(config, store))
        self.si = si_parameters(self.model)
        self.si_list = list(self.si.values())
        self.initial = [p.detach().clone() for p in self.si_list]
        self.optimizer = make_optimizer(config, self.model)
        self.tracker = metrics.StepAngleTracker(self.si_list)

    # -- bookkeeping ----------------------------------------------------------------
    def _status(self, status: str, epochs_done: int, **extra: Any) -> RunStatus:
        value = RunStatus(status, epochs_done, package_version=package_version(), git_sha=git_sha(),
                          torch_version=torch.__version__, **extra)
        self.store.write_status(self.config, value)
        return value

    def _restore(self, checkpoint: dict[str, Any] | None) -> tuple[int, list[dict[str, float]], list[torch.Tensor]]:
        """Start epoch, metric rows so far and the previous epoch's SI weights."""
        if checkpoint is None:
            return 0, [self._row(0, previous=None, step_stats=None)], self.initial
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        epoch = int(checkpoint["epoch"])
        previous = [t.to(self.device) for t in checkpoint["previous_si"]]
        return epoch, self.store.metric_rows(self.config, epoch), previous

    def _checkpoint_from_final(self) -> dict[str, Any] | None:
        """The checkpoint of a finished run that has none, rebuilt from its final.pt, or ``None``.

        resume.pt is not committed, so a store cloned to another machine has only the end point of its runs.
        Extending such a run from final.pt is exact when the optimizer keeps no state from step to step: its
        state is then the one this trainer built at the initial point (SphereSGD's radii ``||w_0||``; plain SGD
        without momentum), and the previous epoch's SI weights are the final ones. With momentum the buffer
        is lost, so such a run is recomputed from the start.
        """
        status = self.store.status(self.config)
        if status is None or status.status != "done" or self.config.momentum != 0:
            return None
        final = self.store.load_final(self.config)
        if final is None:
            return None
        return {"epoch": status.epochs_done, "model": final, "optimizer": self.optimizer.state_dict(),
                "previous_si": [final[name] for name in self.si]}

    def _checkpoint(self, epoch: int) -> None:
        self.store.save_checkpoint(self.config, {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "previous_si": [p.detach().cpu() for p in self.si_list],
        })

    # -- the loop -------------------------------------------------------------------
    def train(self, progress: str) -> RunResult:
        """Train from the checkpoint (or the start) to ``config.epochs``, reporting in mode ``progress``
        (:class:`EpochLog`); the status ends the run.

        The status goes to ``running`` before metrics.csv changes, and the status that ends the run
        is written last, after the timing: readers without the lock rely on both (see :mod:`.store`).
        Ctrl-C (or the SIGTERM a sweep sends its workers) marks the run ``interrupted`` on its way out.
        """
        config = self.config
        self.store.write_config(config)
        start = time.perf_counter()
        wall_before, start_epoch = 0.0, 0
        try:
            checkpoint = self.store.load_checkpoint(config) or self._checkpoint_from_final()
            wall_before = self.store.wall_seconds(config) if checkpoint is not None else 0.0
            epoch, rows, previous = self._restore(checkpoint)
            start_epoch = epoch
            self._status("running", epoch)
            self.store.write_metrics(config, rows)
            diverged_epoch, diverged_reason = None, None
            log = EpochLog(config, progress, epoch)
            while epoch < config.epochs:
                epoch += 1
                step_stats = self._train_epoch(epoch)
                diverged_reason = self._divergence(step_stats)
                if diverged_reason is not None:
                    diverged_epoch = epoch
                    break
                rows.append(self._row(epoch, previous, step_stats))
                previous = [p.detach().clone() for p in self.si_list]
                self.store.write_metrics(config, rows)
                if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                    self._checkpoint(epoch)
                    self._status("running", epoch)
                log.epoch(rows[-1])
            log.close()
            final_sha256 = self.store.save_final(config, self.model.state_dict()) if diverged_epoch is None else ""
            self._write_timing(start_epoch, wall_before, epoch, wall_before + time.perf_counter() - start)
            digest = self.store.metrics_digest(config)
            if diverged_epoch is not None:
                status = self._status("diverged", diverged_epoch - 1, diverged_epoch=diverged_epoch,
                                      diverged_reason=diverged_reason, metrics_sha256=digest)
            else:
                status = self._status("done", epoch, metrics_sha256=digest, final_sha256=final_sha256)
        except (KeyboardInterrupt, SystemExit):
            done = _safe_epochs_done(self.store, config)
            self._write_timing(start_epoch, wall_before, done, wall_before + time.perf_counter() - start)
            self._status("interrupted", done)
            raise
        except Exception as error:  # noqa: BLE001 - recorded, then re-raised as RunFailedError
            done = _safe_epochs_done(self.store, config)
            self._write_timing(start_epoch, wall_before, done, wall_before + time.perf_counter() - start)
            self._status("failed", done, error=f"{type(error).__name__}: {error}")
            raise RunFailedError(f"run {config.run_id} ({config.label()}) failed: {type(error).__name__}: {error}") \
                from error
        return RunResult(config, status, self.store.read_run(config)[1])

    def _write_timing(self, start_epoch: int, wall_before: float, epochs_done: int, wall_seconds: float) -> None:
        """timing.json: the wall time so far, and the wall time at each epoch count where the run started
        or stopped (``wall_seconds_at``), so that a run extended later still tells its cost up to any
        earlier end (:meth:`.RunStore.wall_seconds`)."""
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else machine_id()
        at_epochs = dict(self.store.timing(self.config).get("wall_seconds_at", {}))
        if start_epoch > 0:
            at_epochs.setdefault(str(start_epoch), wall_before)
        at_epochs[str(epochs_done)] = wall_seconds
        self.store.write_timing(self.config, {"wall_seconds": wall_seconds, "wall_seconds_at": at_epochs,
                                              "device": str(self.device), "threads": torch.get_num_threads(),
                                              "machine": device})

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        config = self.config
        self.model.train()
        self.tracker.reset()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        wrong = torch.zeros((), dtype=torch.int64, device=self.device)
        images = 0
        for x, y in self.data.train_batches(epoch, config.seed, config.batch_size):
            logits = metrics.forward(self.model, x, self.compute_dtype)
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.tracker.before_step()
            self.optimizer.step()
            self.tracker.after_step()
            loss_sum += loss.detach().double() * len(y)
            wrong += (logits.argmax(1) != y).sum()
            images += len(y)
        return {"loss_sum": loss_sum, "wrong": wrong, "images": images}

    def _divergence(self, step_stats: dict[str, Any]) -> str | None:
        """Why the epoch just trained ends the run, or ``None``: a NaN/inf loss, or an SI tensor whose
        float32 norm has underflowed to 0 (its ELR ``lr / ||w_i||^2`` is then infinite)."""
        if not torch.isfinite(step_stats["loss_sum"]):
            return "the loss became NaN or inf"
        with torch.no_grad():
            norms = metrics.layer_norms(self.si)
        collapsed = [_short(name) for name, value in norms.items() if not math.isfinite(value) or value == 0.0]
        if collapsed:
            return (f"the scale-invariant weights collapsed: the norm of {', '.join(collapsed)} underflowed to 0 "
                    f"(an infinite ELR)")
        return None

    def _row(self, epoch: int, previous: list[torch.Tensor] | None,
             step_stats: dict[str, Any] | None) -> dict[str, float]:
        """All metrics of one epoch (full passes only on the config's schedule)."""
        config, nan = self.config, float("nan")
        lr = euclidean_lr(self.optimizer)
        with torch.no_grad():
            norms = metrics.layer_norms(self.si)
            si_norm = float(torch.tensor(list(norms.values()), dtype=torch.float64).norm())
            row: dict[str, float] = {
                "epoch": epoch,
                "train_loss_running": float(step_stats["loss_sum"]) / step_stats["images"] if step_stats else nan,
                "train_error_running": int(step_stats["wrong"]) / step_stats["images"] if step_stats else nan,
                "angle_step_rad": self.tracker.mean() if step_stats else nan,
                "angle_step_rms_rad": self.tracker.rms() if step_stats else nan,
                "angle_epoch_deg": float(torch.rad2deg(metrics.angle(previous, self.si_list))) if previous else nan,
                "cos_to_init": metrics.cosine(self.initial, self.si_list),
                "si_norm": si_norm,
                "elr": lr / si_norm ** 2,
            }
        full = {"train_loss": nan, "train_error": nan, "effective_grad_norm": nan, "test_loss": nan,
                "test_error": nan}
        if config.has_full_metrics(epoch):
            train = metrics.train_mode_pass(self.model, self.data, self.si_list, config.batch_size, self.compute_dtype)
            test = metrics.evaluate(self.model, self.data, "test", config.batch_size, self.compute_dtype)
            full = {"train_loss": train.train_loss, "train_error": train.train_error,
                    "effective_grad_norm": train.effective_grad_norm, "test_loss": test.loss,
                    "test_error": test.error}
        row.update(full)
        if config.sharpness_every > 0:
            row.update(self._sharpness(epoch))
        row.update({f"norm/{_short(name)}": value for name, value in norms.items()})
        row.update({f"elr/{_short(name)}": lr / value ** 2 for name, value in norms.items()})
        return row


    def _sharpness(self, epoch: int) -> dict[str, float]:
        """``sharpness`` and ``sharpness/<layer>`` on the config's schedule, NaN in between."""
        config = self.config
        if not config.has_sharpness(epoch):
            return {"sharpness": float("nan"), **{f"sharpness/{_short(name)}": float("nan") for name in self.si}}
        estimate = metrics.hutchinson_sharpness(
            self.model, self.data, self.si, config.batch_size, config.sharpness_images, config.sharpness_probes,
            epoch_generator(config.seed, epoch, stream=2), self.compute_dtype)
        return {"sharpness": estimate.total,
                **{f"sharpness/{_short(name)}": value for name, value in estimate.per_layer.items()}}


def _short(parameter_name: str) -> str:
    return parameter_name.removesuffix(".weight")


def _safe_epochs_done(store: RunStore, config: RunConfig) -> int:
    try:
        status = store.status(config)
    except Exception:  # noqa: BLE001 - a failure path must not raise a second error
        return 0
    return status.epochs_done if status is not None else 0
