"""Where the time of a ``cpu``-preset run goes (issue 16, "no pass paid twice"; prints figures, asserts nothing).

Times each part of one chapter-02 run of the ``cpu`` preset on this machine, with the run's own engine
objects: the training epoch (forward, backward, optimizer step, angle tracking), the train-mode metric
pass (batch 128: its batch statistics are part of the metric), the test pass at several batch sizes,
the Hutchinson sharpness, the store writes (metrics.csv, status.json) and the resume checkpoint. It then
weights each part by how often a 150-epoch run does it (full metrics on epochs 1–20 and every 5th,
sharpness every 10th) and prints the share of the run's time each part takes.

Run: ``.venv/bin/python benchmarks/profile_epoch.py [--threads 1] [--compute-dtype bfloat16]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable

import torch

from sphere_regimes import chapters, metrics
from sphere_regimes.engine import _Trainer
from sphere_regimes.store import RunStore


def seconds(work: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``work`` (after one warm-up call)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = chapters.three_regimes.Params.from_preset("cpu")
    config = chapters.three_regimes.grid_configs(params, [1e-3])[0]
    config = type(config)(**{**config.__dict__, "compute_dtype": args.compute_dtype})
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        trainer = _Trainer(config, store)
        store.write_config(config)
        dtype = trainer.compute_dtype
        rows = [trainer._row(0, None, None)]
        parts = {
            "training epoch": (seconds(lambda: trainer._train_epoch(1), args.repeats), config.epochs),
            "train-mode metric pass (batch 128)": (seconds(lambda: metrics.train_mode_pass(
                trainer.model, trainer.data, trainer.si_list, config.batch_size, dtype), args.repeats),
                sum(config.has_full_metrics(e) for e in range(1, config.epochs + 1))),
            "sharpness": (seconds(lambda: trainer._sharpness(config.epochs), args.repeats),
                          sum(config.has_sharpness(e) for e in range(1, config.epochs + 1))),
            "metrics.csv + status.json": (seconds(lambda: (store.write_metrics(config, rows * 150),
                                                           trainer._status("running", 1)), args.repeats),
                                          config.epochs),
            "resume checkpoint": (seconds(lambda: trainer._checkpoint(1), args.repeats), config.epochs),
        }
        full_epochs = parts["train-mode metric pass (batch 128)"][1]
        tests = {size: seconds(lambda s=size: metrics.evaluate(trainer.model, trainer.data, "test", s, dtype),
                               args.repeats) for size in (128, 256, 512, 1000, 2000, 5000)}
    print(f"{config.label()}, {args.threads} thread(s), compute {args.compute_dtype}, torch {torch.__version__}")
    print("test pass (10000 images) by batch size: " + ", ".join(f"{s}: {t * 1e3:.0f} ms" for s, t in tests.items()))
    parts[f"test pass (batch {config.batch_size})"] = (tests[config.batch_size], full_epochs)
    best = min(tests, key=tests.get)
    total = sum(t * n for t, n in parts.values())
    print(f"{'part':<38} {'once (ms)':>10} {'times':>6} {'per run (s)':>12} {'share':>7}")
    for name, (once, times) in parts.items():
        print(f"{name:<38} {once * 1e3:>10.1f} {times:>6} {once * times:>12.1f} {once * times / total:>6.1%}")
    print(f"{'total':<38} {'':>10} {'':>6} {total:>12.1f}   ({total * args.threads / 3600:.3f} core-hours)")
    print(f"fastest test batch: {best} ({tests[best] * 1e3:.0f} ms against {tests[config.batch_size] * 1e3:.0f} ms "
          f"at {config.batch_size})")


if __name__ == "__main__":
    main()
