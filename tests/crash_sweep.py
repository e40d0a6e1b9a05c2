"""Crash test of a sweep: SIGKILL it at random moments, resume it, compare with an uninterrupted one.

A small preset (three ELRs after one bisection round; four epochs of a width-2 ConvNetSI on 512
real Fashion-MNIST images, with Hutchinson sharpness) is swept by ``sphere-regimes sweep`` in a
child process with one thread. The child is killed with SIGKILL again and again, each time at
one of four kinds of moments, taken in turn:

* ``time``: after a random delay (start-up, data loading, training, metric passes, writes);
* ``step``: right after the k-th optimizer step of the child (in the middle of an epoch);
* ``eval``: before the k-th minibatch of a metric pass (train-mode pass, test pass, sharpness);
* ``write``: during the k-th store write, once a random fraction of the temporary file is on disk
  (half-written temporary files, and complete ones that were never renamed).

The child kills itself at the named moments through wrappers that it installs around the
library's functions (the library has no crash hooks); k is drawn between 1 and a third of the
count of such events in an uninterrupted sweep. ``--compute-dtype bfloat16`` sweeps the same runs
computing in bfloat16 (:class:`~sphere_regimes.config.RunConfig` ``compute_dtype``). After each kill the sweep is started again. When
a sweep completes, its store must equal the uninterrupted sweep's bit for bit (``config.json``,
``metrics.csv``, ``status.json`` with the metrics checksum, ``resume.pt``), every run must read
back as ended, and no temporary file or held lock may be left. Then a fresh store is swept and
killed, until the asked number of kills is reached.

Run by hand (prints each kill, then the kills survived and the time taken; exit status 1 on any
difference)::

    python tests/crash_sweep.py --kills 20 [--compute-dtype bfloat16]

``tests/test_reliability.py`` runs it with a few kills.
"""

from __future__ import annotations

import argparse
import builtins
import collections
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POINTS = ("time", "step", "eval", "write")
COMPARED_FILES = ("config.json", "metrics.csv", "status.json", "resume.pt")
PRESET = "crash"
PRESET_YAML = """description: "crash test: two short runs with sharpness and sparse metrics"
notebooks:
  02_three_regimes:
    train_size: 512
    width: 2
    batch_size: 128
    epochs: 3
    dense_metric_epochs: 0
    metric_every: 2
    sharpness_every: 2
    elrs: [0.01, 1.0]
    seeds: [0]
    bisection_steps: 0
    individual_elrs: []
    pilot_widths: []
    pilot_train_sizes: []
"""


# -- the child: a sweep that kills itself at the k-th event of one kind ---------------------------

def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _DyingFile:
    """A file opened for writing that writes ``fraction`` of what it is given, syncs it, and dies."""

    def __init__(self, handle: Any, fraction: float) -> None:
        self.handle, self.fraction = handle, fraction

    def __enter__(self) -> _DyingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.handle.close()

    def write(self, payload: bytes) -> None:
        self.handle.write(payload[: int(len(payload) * self.fraction)])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        _die()


def _arm(hit: Callable[[str], bool], fraction: float) -> None:
    """Wrap the optimizer step, the metric passes' batches and the store's file writes so that
    each reports its event to ``hit``, and the process dies where ``hit`` says so."""
    from sphere_regimes import data, optim, store

    step = optim.SphereSGD.step

    def step_then_maybe_die(self: Any, *args: Any, **kwargs: Any) -> Any:
        loss = step(self, *args, **kwargs)
        if hit("step"):
            _die()
        return loss

    eval_batches = data.DeviceData.eval_batches

    def eval_batches_until_death(self: Any, *args: Any, **kwargs: Any) -> Any:
        for batch in eval_batches(self, *args, **kwargs):
            if hit("eval"):
                _die()
            yield batch

    def open_for_store(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = builtins.open(file, mode, *args, **kwargs)
        if mode == "wb" and hit("write"):  # the store's atomic writes open their temporary file "wb"
            return _DyingFile(handle, fraction)
        return handle

    optim.SphereSGD.step = step_then_maybe_die
    data.DeviceData.eval_batches = eval_batches_until_death
    store.open = open_for_store  # shadows the builtin inside sphere_regimes.store only


def _plan_in(compute_dtype: str) -> None:
    """Make every planned run compute in ``compute_dtype`` (the preset's chapter has no such parameter)."""
    from sphere_regimes import chapters

    planned_runs = chapters.planned_runs

    def planned_in_dtype(*args: Any, **kwargs: Any) -> dict[str, list[Any]]:
        return {name: [c.replace(compute_dtype=compute_dtype) for c in configs]
                for name, configs in planned_runs(*args, **kwargs).items()}

    chapters.planned_runs = planned_in_dtype


def child(point: str, k: int, fraction: float, counts_path: str | None, compute_dtype: str) -> int:
    """Sweep the preset (named by the environment) with one thread, computing in ``compute_dtype``;
    die at the k-th ``point`` event, or write the count of every kind of event to ``counts_path``
    when the sweep ends."""
    import torch

    torch.set_num_threads(1)
    counts: collections.Counter[str] = collections.Counter()

    def hit(kind: str) -> bool:
        counts[kind] += 1
        return kind == point and counts[kind] == k

    _arm(hit, fraction)
    _plan_in(compute_dtype)
    from sphere_regimes.cli import main

    status = main(["sweep", PRESET, "--workers", "1"])
    if counts_path:
        Path(counts_path).write_text(json.dumps(counts))
    return status


# -- the parent: kill, resume, compare ------------------------------------------------------------

@dataclass
class Report:
    kills: collections.Counter[str] = field(default_factory=collections.Counter)  # kills by kind of moment
    sweeps: int = 0  # sweeps completed after being killed
    problems: list[str] = field(default_factory=list)  # differences from the uninterrupted sweep
    reference_seconds: float = 0.0  # wall time of the uninterrupted sweep (child start-up included)


def _start(workdir: Path, store: Path, args: list[str]) -> subprocess.Popen:
    """The child sweeping into ``store``; ``args``: point, k, fraction, counts path, compute dtype."""
    env = {**os.environ, "SPHERE_REGIMES_PRESETS": str(workdir / "presets"), "SPHERE_REGIMES_RESULTS": str(store)}
    with open(workdir / "child.log", "ab") as log:
        return subprocess.Popen([sys.executable, __file__, "child", *args], env=env, stdout=log, stderr=log,
                                start_new_session=True)


def _finish(process: subprocess.Popen, delay: float | None = None) -> int:
    """Wait for the child (killing its process group after ``delay`` seconds); its exit status."""
    try:
        return process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def _reference(workdir: Path, compute_dtype: str) -> tuple[dict[str, int], float]:
    """Sweep into ``workdir/reference`` without a kill; the count of each kind of event and the time."""
    counts_path = workdir / "counts.json"
    start = time.perf_counter()
    status = _finish(_start(workdir, workdir / "reference", ["none", "0", "0", str(counts_path), compute_dtype]))
    if status != 0:
        raise RuntimeError(f"the uninterrupted sweep failed (exit status {status}); see {workdir / 'child.log'}")
    return json.loads(counts_path.read_text()), time.perf_counter() - start


def compare(store: Path, reference: Path) -> list[str]:
    """Every difference between a completed store and the uninterrupted one, and every leftover."""
    from sphere_regimes.store import ENDED, RunStore

    problems = []
    runs = sorted(p.name for p in reference.iterdir())
    if sorted(p.name for p in store.iterdir()) != runs:
        problems.append(f"{store} holds runs {sorted(p.name for p in store.iterdir())}, expected {runs}")
    problems += [f"{path} left behind" for path in store.rglob("*.tmp")]
    result_store = RunStore(store)
    for run_id in runs:
        for name in COMPARED_FILES:
            path, expected = store / run_id / name, reference / run_id / name
            if not path.exists() or path.read_bytes() != expected.read_bytes():
                problems.append(f"{path} differs from the uninterrupted sweep's")
        config = result_store.read_config(store / run_id)
        status, frame = result_store.read_run(config)
        if status is None or status.status not in ENDED or frame is None:
            problems.append(f"{store / run_id} does not read back as an ended run ({status})")
        if result_store.is_locked(config):
            problems.append(f"{store / run_id} is still locked")
    return problems


def crash_sweep(workdir: Path, kills: int, seed: int = 0,
                log: Callable[[str], None] = functools.partial(print, flush=True),
                compute_dtype: str = "float32") -> Report:
    """Kill sweeps ``kills`` times in all (kinds of moment in turn), resuming each until it completes,
    and compare every completed store with an uninterrupted sweep (all computing in ``compute_dtype``)."""
    (workdir / "presets").mkdir(parents=True)
    (workdir / "presets" / f"{PRESET}.yaml").write_text(PRESET_YAML)
    counts, reference_seconds = _reference(workdir, compute_dtype)
    report = Report(reference_seconds=reference_seconds)
    log(f"uninterrupted sweep: {reference_seconds:.1f} s, events {dict(counts)}")
    rng = random.Random(seed)
    while sum(report.kills.values()) < kills:
        store = workdir / f"sweep-{report.sweeps + 1}"
        while True:
            done = sum(report.kills.values())
            point = POINTS[done % len(POINTS)] if done < kills else "none"
            k = rng.randint(1, max(1, counts.get(point, 0) // 3))
            fraction = rng.random()
            delay = rng.uniform(0, reference_seconds) if point == "time" else None
            status = _finish(_start(workdir, store, [point, str(k), str(fraction), "", compute_dtype]), delay)
            if status == 0:
                break
            if status != -signal.SIGKILL:
                raise RuntimeError(f"a sweep failed (exit status {status}); see {workdir / 'child.log'}")
            report.kills[point] += 1
            where = f"after {delay:.1f} s" if point == "time" else f"at {point} event {k}"
            log(f"kill {done + 1}: sweep {report.sweeps + 1} killed {where}")
        report.sweeps += 1
        report.problems += compare(store, workdir / "reference")
    return report


def main(argv: list[str] | None = None) -> int:
    from sphere_regimes.config import COMPUTE_DTYPES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs in all (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one, removed at the end)")
    parser.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default="float32",
                        help="precision of the runs' passes (default float32)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.workdir:
        report = crash_sweep(Path(args.workdir), args.kills, args.seed, compute_dtype=args.compute_dtype)
    else:
        with tempfile.TemporaryDirectory(prefix="crash-sweep-") as scratch:
            report = crash_sweep(Path(scratch), args.kills, args.seed, compute_dtype=args.compute_dtype)
    seconds = time.perf_counter() - start
    total = sum(report.kills.values())
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    by_kind = ", ".join(f"{report.kills[p]} {p}" for p in POINTS)
    verdict = "survived" if not report.problems else "did NOT survive"
    print(f"{verdict} {total} kills ({by_kind}) in {report.sweeps} sweeps: every completed store "
          f"{'equals' if not report.problems else 'differs from'} the uninterrupted sweep's bit for bit; "
          f"{seconds:.0f} s in all (uninterrupted sweep {report.reference_seconds:.1f} s)")
    return 1 if report.problems else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        point, k, fraction, counts_path, compute_dtype = sys.argv[2:7]
        sys.exit(child(point, int(k), float(fraction), counts_path or None, compute_dtype))
    sys.exit(main())
