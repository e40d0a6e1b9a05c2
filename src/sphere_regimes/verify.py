"""Re-execute a sample of stored runs and compare them with the store (``make verify``).

A stored run is re-run from nothing for its first ``epochs`` epochs in a scratch store, with the
thread count it was trained with (``timing.json``), and every metric of those epochs is compared
with the stored rows.

Tolerance: on the same CPU kind and thread count the rerun is bit-identical, and every epoch of the
rerun is compared with a relative tolerance ``rtol`` (default ``1e-4``) plus an absolute floor of
``1e-7`` for values near zero. Across CPUs (other instruction sets, other BLAS kernels) float32 sums
differ in their last bits and training amplifies the difference: measured between two machines of
this project, the initial point agrees to 2e-8 relative, but after two epochs even a regime-1 run
at ELR 1e-4 differs by 1% in the effective gradient norm and 30 images in the test error, and a
regime-3 run by a factor of two in its loss after one epoch. So on another machine (``timing.json``
records the CPU model and a digest of its instruction-set flags; a run without that record counts
as another machine) only the initial point, epoch 0, is compared, with ``INITIAL_RTOL``: it checks
the data, the shared initialisation and last layer, and the metric definitions exactly. Another
thread count changes the order of float32 sums too (6e-4 relative in the effective gradient norm at
the initial point on the smoke preset), so reruns use the stored run's thread count. The sharpness
columns are left out where the rerun's shorter schedule puts them on other epochs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import chapters, paths, presets
from .config import RunConfig
from .data import DATASET_INFO, DataNotFoundError
from .engine import load, run
from .presets import PresetError
from .regimes import classify
from .store import RunResult, RunStore, machine_id

ABSOLUTE_FLOOR = 1e-7
"""Absolute tolerance added to ``rtol * |stored|`` (metrics that are zero up to float noise)."""
INITIAL_RTOL = 1e-6
"""Relative tolerance of the initial point (epoch 0) when the rerun runs on another CPU kind."""


@dataclass(frozen=True)
class Check:
    """The outcome of re-executing one stored run."""

    label: str
    run_id: str
    epochs: int
    worst_column: str
    worst_deviation: float  # max over compared cells of |rerun - stored| / (rtol |stored| + ABSOLUTE_FLOOR)
    scope: str  # "every epoch" (same machine) or "initial point" (another machine, at INITIAL_RTOL)

    @property
    def passed(self) -> bool:
        return self.worst_deviation <= 1.0


def compare(stored: pd.DataFrame, rerun: pd.DataFrame, rtol: float) -> tuple[str, float]:
    """The worst column and its worst deviation in units of the tolerance ``rtol |stored| + ABSOLUTE_FLOOR``
    over the rerun's epochs and the columns both have (a run stored before a column was recorded lacks it;
    at most 1 passes; a NaN where the other has a number counts as infinite)."""
    expected = stored.loc[rerun.index]
    worst_column, worst = "", 0.0
    for column in rerun.columns.intersection(stored.columns, sort=False):
        if column.startswith("sharpness") and expected[column].isna().any():
            continue  # the rerun's shorter run puts its last sharpness on another epoch
        got, want = rerun[column].to_numpy(float), expected[column].to_numpy(float)
        if not np.array_equal(np.isnan(got), np.isnan(want)):
            return column, float("inf")
        both = ~np.isnan(want)
        deviation = np.abs(got[both] - want[both]) / (rtol * np.abs(want[both]) + ABSOLUTE_FLOOR)
        if deviation.size and deviation.max() > worst:
            worst_column, worst = column, float(deviation.max())
    return worst_column, worst


def sample_runs(results: list[RunResult], count: int) -> list[RunResult]:
    """Up to ``count`` finished runs, one per regime first (lowest ELR of each), then spread over the rest."""
    finished = sorted((r for r in results if r.status.status == "done"), key=lambda r: (r.config.elr or 0, r.config.seed))
    first_of_regime: dict[int, RunResult] = {}
    for result in (r for r in finished if r.config.is_sphere):  # each run classified once
        try:
            regime = classify(result.metrics, DATASET_INFO[result.config.dataset].num_classes)
        except ValueError:  # too short to classify (a pilot run)
            continue
        first_of_regime.setdefault(regime, result)
    chosen = {r.config.run_id: r for _, r in sorted(first_of_regime.items())[:count]}
    for index in np.linspace(0, len(finished) - 1, num=min(count, len(finished))).round().astype(int):
        if len(chosen) < count:
            chosen.setdefault(finished[index].config.run_id, finished[index])
    return list(chosen.values())


def rerun_metrics(config: RunConfig, epochs: int, scratch: RunStore, threads: int = 1) -> pd.DataFrame:
    """The metrics of ``config``'s first ``epochs`` epochs, computed from nothing in ``scratch`` on the CPU
    with ``threads`` threads (use the stored run's own count: float sums, and with them the trajectory,
    depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run(config.replace(epochs=min(epochs, config.epochs), device="cpu"), scratch, progress=False).metrics
    finally:
        torch.set_num_threads(before)


def reexecute(result: RunResult, epochs: int, scratch: RunStore, rtol: float = 1e-4, threads: int = 1,
              same_machine: bool = True) -> Check:
    """Re-run ``result``'s config for its first ``epochs`` epochs and compare with the stored rows: every
    epoch at ``rtol`` on the same machine, else the initial point at :data:`INITIAL_RTOL`."""
    rerun = rerun_metrics(result.config, epochs, scratch, threads)
    if same_machine:
        return Check(result.config.label(), result.config.run_id, len(rerun) - 1,
                     *compare(result.metrics, rerun, rtol), "every epoch")
    return Check(result.config.label(), result.config.run_id, 0,
                 *compare(result.metrics, rerun.loc[[0]], INITIAL_RTOL), "initial point")


def made_here(store: RunStore, config: RunConfig) -> bool:
    """Whether the stored run was trained on this CPU kind (``timing.json``'s machine record)."""
    return store.timing(config).get("machine") == machine_id()


def stored_threads(store: RunStore, config: RunConfig) -> int:
    """The thread count the stored run was trained with (``timing.json``; 1, the sweeps' count, if absent)."""
    return int(store.timing(config).get("threads") or 1)


def verify_preset(preset: str, count: int = 3, epochs: int = 2, rtol: float = 1e-4,
                  store: RunStore | None = None, scratch: Path | None = None) -> list[Check]:
    """Re-execute ``count`` finished runs of ``preset``'s plans (:func:`sample_runs`) and compare them;
    the reruns go to ``scratch`` (default: a fresh folder under ``_work``, removed afterwards)."""
    store = store if store is not None else presets.preset_store(preset)
    configs = {c.run_id: c for configs in chapters.planned_runs(preset).values() for c in configs}
    results = [r for r in (load(c, store) for c in configs.values()) if r is not None]
    if not results:
        raise ValueError(f"the store {store.root} holds no finished run of preset {preset!r}; nothing to verify")
    def check_all(root: Path) -> list[Check]:
        return [reexecute(r, epochs, RunStore(root), rtol, stored_threads(store, r.config), made_here(store, r.config))
                for r in sample_runs(results, count)]

    if scratch is not None:
        return check_all(scratch)
    paths.WORK_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="verify-", dir=paths.WORK_DIR) as fresh:  # never reuse a rerun
        return check_all(Path(fresh))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-execute a sample of a preset's stored runs for their first "
                                                 "epochs and compare them with the store.")
    parser.add_argument("preset", help="smoke, cpu, gpu or paper (presets/*.yaml)")
    parser.add_argument("--runs", type=int, default=3, help="how many stored runs to re-execute (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs re-executed per run (default 2)")
    parser.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    args = parser.parse_args(argv)
    try:
        checks = verify_preset(args.preset, args.runs, args.epochs, args.rtol)
    except (PresetError, DataNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for check in checks:
        verdict = "ok" if check.passed else "MISMATCH"
        compared = f"{check.epochs} epochs" if check.scope == "every epoch" else "initial point (made on another machine)"
        print(f"{verdict:8} {check.run_id} {check.label}: {compared}, worst deviation "
              f"{check.worst_deviation:.2g} x tolerance ({check.worst_column or 'none'})")
    failed = [c for c in checks if not c.passed]
    print(f"{len(checks) - len(failed)} of {len(checks)} re-executed runs match the store (rtol {args.rtol:g} on "
          f"the machine that made them, {INITIAL_RTOL:g} at the initial point elsewhere; + {ABSOLUTE_FLOOR:g} absolute)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
