"""Wall time of one sweep with the executors of ``sphere_regimes.sweep`` (issue 8; prints figures,
asserts nothing).

The sweep is every run that a preset plans (default ``smoke``: its three-regimes grid and one round of
boundary bisection, 10 runs of ConvNetSI-4 on 512 Fashion-MNIST images), computed from scratch three
times into fresh scratch stores:

* local, 1 worker (this process, one thread);
* local, 2 workers (two spawned single-thread processes);
* Ray on 2 CPUs (a Ray instance started on 127.0.0.1; one single-thread task per run). Its line also
  gives the time to start and stop the instance, which the total includes.

The figures are wall times on whatever else the machine is running: on a shared machine they move with
its load. Run: ``.venv/bin/python benchmarks/sweep_executors.py [--preset smoke] [--skip-ray]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

import torch

from sphere_regimes import plans, sweep
from sphere_regimes.store import RunStore


def timed_sweep(preset: str, root: Path, executor: sweep.Executor) -> tuple[float, int]:
    """Wall seconds of computing ``preset`` into the empty store ``root``, and the number of runs."""
    os.environ["SPHERE_REGIMES_RESULTS"] = str(root)  # the boundary search plans from the preset's store
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        failed = plans.compute(preset, RunStore(root), executor)
    seconds = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{len(failed)} runs failed in {root}")
    return seconds, len(RunStore(root).runs())


def timed_ray_sweep(preset: str, root: Path) -> tuple[float, float, int]:
    """Wall seconds of the sweep on a Ray instance with 2 CPUs started here: total (start, sweep, stop)
    and the start and stop alone."""
    executor = sweep.Executor("ray", workers=2)
    start = time.perf_counter()
    with sweep.connected(executor):
        seconds, runs = timed_sweep(preset, root, executor)
    total = time.perf_counter() - start
    return total, total - seconds, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="smoke", help="preset whose planned runs make the sweep (default smoke)")
    parser.add_argument("--skip-ray", action="store_true", help="only the local executor")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"sweep of preset {args.preset!r} on {sweep.available_cores()} cores, torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            seconds, runs = timed_sweep(args.preset, Path(scratch) / f"local{workers}",
                                        sweep.Executor("local", workers=workers))
            label = f"local, {workers} worker{'s' if workers > 1 else ''}:"
            print(f"{label:<19}{seconds:7.1f} s  ({runs} runs)", flush=True)
        if not args.skip_ray:
            total, overhead, runs = timed_ray_sweep(args.preset, Path(scratch) / "ray")
            print(f"{'Ray, 2 CPUs:':<19}{total:7.1f} s  ({runs} runs; {overhead:.1f} s of it to start and stop "
                  "the Ray instance)", flush=True)


if __name__ == "__main__":
    main()
