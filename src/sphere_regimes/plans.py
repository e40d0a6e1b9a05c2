"""Run plans: which training runs each chapter needs under a preset.

A chapter registers a function ``plan(params) -> list[RunConfig]`` with :func:`register`;
``params`` are the notebook's parameters as the preset sets them. ``make book`` first calls
:func:`compute` (``python -m sphere_regimes.plans compute PRESET``), which trains whatever the
store lacks; the notebooks then only read the store through :func:`load_results`, so a
notebook never trains.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from . import paths
from .config import STORE_FORMAT, RunConfig
from .data import DATASET_INFO, DataNotFoundError
from .engine import RunFailedError, RunResult, load, run
from .regimes import classify
from .presets import PresetError, load_preset, resolved_params, where
from .store import RunStore, StoreError

Plan = Callable[[dict[str, Any]], list[RunConfig]]
PLANS: dict[str, Plan] = {}


class MissingRunsError(RuntimeError):
    """A notebook asked for runs that the store does not hold yet."""


def register(notebook: str) -> Callable[[Plan], Plan]:
    """Decorator: declare ``plan`` as the run plan of ``notebook``."""
    def decorate(plan: Plan) -> Plan:
        PLANS[notebook] = plan
        return plan
    return decorate


def planned_runs(preset: str) -> dict[str, list[RunConfig]]:
    """Every notebook's planned runs under ``preset``; a value that makes an invalid run (an ELR
    <= 0, zero epochs, an unknown dataset) is a :class:`PresetError` naming the preset file."""
    notebooks = load_preset(preset)["notebooks"]
    planned = {}
    for name, plan in PLANS.items():
        if name not in notebooks:
            continue
        params = resolved_params(preset, name)
        try:
            planned[name] = plan(params)
        except ValueError as error:
            raise PresetError(f"{where(preset, name)}: {error}; fix the preset") from None
    return planned


COMMITTED_PRESET = "cpu"
"""The preset whose runs live in the committed store ``results/``."""


def preset_store(preset: str) -> RunStore:
    """The result store of ``preset``: ``SPHERE_REGIMES_RESULTS`` when set, else ``results/`` for the
    committed ``cpu`` preset and ``_work/PRESET/results`` for the others (as the Makefile sets it)."""
    if os.environ.get("SPHERE_REGIMES_RESULTS"):
        return RunStore(os.environ["SPHERE_REGIMES_RESULTS"])
    return RunStore(paths.RESULTS_DIR if preset == COMMITTED_PRESET else paths.WORK_DIR / preset / "results")


def compute(preset: str, store: RunStore | None = None, workers: int = 1) -> list[RunConfig]:
    """Train every planned run of ``preset`` that the store lacks; returns the failed ones.

    Plans may depend on finished runs (a boundary search plans its next ELRs from the regimes found
    so far), so the plans are evaluated again after each pass until nothing new is planned. With
    ``workers > 1`` the runs of a pass go to that many processes of one thread each (on a 2-core
    CPU two single-thread runs beat one two-thread run); runs are handed out in plan order.
    """
    store = store if store is not None else preset_store(preset)
    note = other_format_note(store)
    if note:
        print(note, flush=True)
    failed: dict[str, RunConfig] = {}
    while True:
        unique = {c.run_id: c for configs in planned_runs(preset).values() for c in configs}
        todo = [c for c in unique.values() if c.run_id not in failed and load(c, store) is None]
        print(f"{preset}: {len(unique)} planned runs, {len(unique) - len(todo) - len(failed)} in the store, "
              f"{len(todo)} to compute", flush=True)
        if not todo:
            return list(failed.values())
        for config in _compute_pass(todo, store, workers):
            failed[config.run_id] = config


def other_format_note(store: RunStore) -> str:
    """A line about the store's runs written by another store format (an older or newer version of
    this package); they are never read, as the format is part of every run id. Empty if none."""
    others = store.other_format_runs()
    if not others:
        return ""
    formats = sorted({str(f) for f in others.values()})
    return (f"note: {len(others)} run folder(s) in {store.root} hold store format {', '.join(formats)}, not this "
            f"version's format {STORE_FORMAT} (e.g. {next(iter(others)).name}); this version ignores them and "
            "computes its own runs: delete them, or read them with the package version that wrote them")


def _compute_pass(todo: list[RunConfig], store: RunStore, workers: int) -> list[RunConfig]:
    """Compute ``todo``; returns the runs that failed."""
    if workers <= 1 or len(todo) <= 1:
        return _report((_compute_one(c, store.root) for c in todo), len(todo))
    with multiprocessing.get_context("spawn").Pool(workers, initializer=torch.set_num_threads,
                                                   initargs=(1,)) as pool:
        return _report(pool.imap_unordered(functools.partial(_compute_one, root=store.root), todo), len(todo))


def _report(outcomes: Iterable[tuple[RunConfig, str | None]], total: int) -> list[RunConfig]:
    """Print each finished run as it comes; returns the failed ones."""
    failed = []
    for index, (config, error) in enumerate(outcomes, 1):
        print(f"[{index}/{total}] {config.label()}: {error or 'done'}", flush=True)
        if error:
            failed.append(config)
    return failed


def _compute_one(config: RunConfig, root: Path) -> tuple[RunConfig, str | None]:
    """Run ``config`` in the store at ``root``; the error message if it failed."""
    try:
        run(config, RunStore(root))
    except RunFailedError as error:
        return config, str(error)
    return config, None


def load_results(notebook: str, params: dict[str, Any], store: RunStore | None = None) -> list[RunResult]:
    """The finished runs of ``notebook``'s plan; raises :class:`MissingRunsError` naming what is missing."""
    configs = PLANS[notebook](params)
    store = store if store is not None else preset_store(params["preset"])
    results = [load(c, store) for c in configs]
    missing = [c for c, r in zip(configs, results) if r is None]
    if missing:
        names = "; ".join(c.label() for c in missing[:5])
        raise MissingRunsError(f"{len(missing)} of {len(configs)} runs of {notebook} are not in the store "
                               f"(e.g. {names}); compute them with `make runs PRESET={params.get('preset', '?')}`")
    return results


def run_states(preset: str, store: RunStore | None = None) -> list[dict[str, Any]]:
    """One row per planned run of ``preset``: notebook, label, state (done, diverged, running,
    interrupted, failed, missing), epochs done of planned, and the regime of a finished run."""
    store = store if store is not None else preset_store(preset)
    rows = []
    for notebook, configs in planned_runs(preset).items():
        for config in configs:
            status = store.status(config)
            state = "missing" if status is None else status.status
            if state == "running" and not store.is_locked(config):
                state = "interrupted"
            finished = load(config, store)
            regime = None
            if finished is not None and config.is_sphere and status.status == "done":
                regime = _regime(finished)
            rows.append({"notebook": notebook, "run": config.run_id, "label": config.label(), "state": state,
                         "epochs": f"{status.epochs_done if status else 0}/{config.epochs}", "regime": regime})
    return rows


def _regime(result: RunResult) -> int | None:
    """The regime of a finished run, or ``None`` for a run with too few evaluated epochs to tell."""
    try:
        return classify(result.metrics, DATASET_INFO[result.config.dataset].num_classes)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute the runs a preset's chapters need.")
    parser.add_argument("command", choices=["compute", "list"])
    parser.add_argument("preset")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes, one thread each (default 1)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for notebook, configs in planned_runs(args.preset).items():
                print(f"{notebook}: {len(configs)} runs")
            return 0
        failed = compute(args.preset, workers=args.workers)
    except (PresetError, DataNotFoundError, ValueError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if failed else 0


from . import experiments  # noqa: E402,F401 - registers the chapters' plans

if __name__ == "__main__":
    from sphere_regimes import plans  # the registry lives in the package module, not in __main__

    sys.exit(plans.main())
