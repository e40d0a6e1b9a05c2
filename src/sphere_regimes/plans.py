"""Computing a preset's runs: which runs its chapters plan (``plan`` of each module of
:mod:`sphere_regimes.chapters`), which the store lacks, and their states.

``make book`` first calls :func:`compute` (``sphere-regimes sweep PRESET``), which trains whatever the
store lacks with an executor of :mod:`sphere_regimes.sweep`; the chapters then only read the store,
so a notebook never trains.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import chapters, presets
from .config import STORE_FORMAT, RunConfig
from .data import DATASET_INFO
from .engine import load
from .labels import describe
from .regimes import classify
from .store import RunResult, RunStore, StoreError
from .sweep import Executor, connected, execute


def compute(preset: str, store: RunStore | None = None, executor: Executor | None = None,
            only: str | None = None) -> list[RunConfig]:
    """Train every planned run of ``preset`` (or of its chapter ``only``) that the store lacks with
    ``executor`` (default: one process, one thread; :mod:`sphere_regimes.sweep`); returns the failed runs.

    Plans may depend on finished runs (a boundary search plans its next ELRs from the regimes found
    so far), so the plans are evaluated again after each pass until nothing new is planned.
    """
    store = store if store is not None else presets.preset_store(preset)
    for removed in store.remove_stale_locks():
        print(f"removed {removed}: it held only the stale lock of a run that never started", flush=True)
    note = other_format_note(store)
    if note:
        print(note, flush=True)
    executor = executor if executor is not None else Executor()
    failed: dict[str, RunConfig] = {}
    with connected(executor):
        while True:
            unique = longest_runs(c for configs in chapters.planned_runs(preset, only, store).values() for c in configs)
            todo = longest_first(c for c in unique.values() if c.run_id not in failed and load(c, store) is None)
            print(f"{preset}: {len(unique)} planned runs, {len(unique) - len(todo) - len(failed)} in the store, "
                  f"{len(todo)} to compute", flush=True)
            if not todo:
                return list(failed.values())
            for config in execute(todo, store, executor):
                failed[config.run_id] = config


def longest_first(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """``configs`` by decreasing epochs, in plan order among equals: a pass ends when its last run does, so
    its longest runs start first and the workers finish together (longest processing time first), instead
    of one long run started last keeping one worker busy while the others wait for the next pass."""
    return sorted(configs, key=lambda config: -config.epochs)


def longest_runs(configs) -> dict[str, RunConfig]:
    """The planned runs by id, each with the most epochs any plan asks of it: epochs are not part of a run's
    id, so a run that one chapter reads for 150 epochs and another (the budget study) for 1000 is trained to
    1000, and the first reads its first 150."""
    unique: dict[str, RunConfig] = {}
    for config in configs:
        if config.run_id not in unique or config.epochs > unique[config.run_id].epochs:
            unique[config.run_id] = config
    return unique


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


def run_states(preset: str, store: RunStore | None = None, only: str | None = None) -> list[dict[str, Any]]:
    """One row per planned run of ``preset`` (or of its chapter ``only``): notebook, label, state (done,
    diverged, running, interrupted, failed, corrupt, missing), epochs done of planned, the regime of a
    finished run and the error of a failed or corrupt one (its one-line problem: the listing goes on)."""
    store = store if store is not None else presets.preset_store(preset)
    rows = []
    for notebook, configs in chapters.planned_runs(preset, only, store).items():
        for config in configs:
            rows.append({"notebook": notebook, "run": config.run_id, **run_row(config, store)})
    return rows


def run_row(config: RunConfig, store: RunStore) -> dict[str, Any]:
    """What a listing shows of one run: label (:func:`sphere_regimes.labels.describe`), state, epochs done
    of ``config.epochs``, the regime of a finished run (for an SGD run its own regime, as chapter 03 reads
    it), final train loss and test error, and the error of a failed or corrupt run."""
    row: dict[str, Any] = {"label": config.label(), "state": "missing", "epochs": f"0/{config.epochs}",
                           "regime": None, "train_loss": None, "test_error": None, "error": None}
    try:
        status = store.status(config)
        finished = load(config, store)
        row["label"] = describe(config, store, finished)
    except StoreError as error:
        return {**row, "state": "corrupt", "error": str(error)}
    if status is None:
        return row
    state = status.status
    if state == "running" and not store.is_locked(config):
        state = "interrupted"  # killed outright, or written before the interrupted status existed
    row.update(state=state, epochs=f"{status.epochs_done}/{config.epochs}",
               error=status.error if state == "failed" else None)
    if finished is not None and status.status == "done":
        final = finished.final
        row.update(train_loss=float(final["train_loss"]), test_error=float(final["test_error"]),
                   regime=_regime(finished))
    return row


def store_rows(store: RunStore) -> list[dict[str, Any]]:
    """One :func:`run_row` per run folder of ``store`` (planned by a preset or not), with ``run``; a folder
    whose config cannot be read is a ``corrupt`` row with its problem."""
    rows = []
    for entry, config, problem in store.entries():
        if config is None:
            rows.append({"run": entry.name, "label": "", "state": "corrupt", "epochs": "", "regime": None,
                         "train_loss": None, "test_error": None, "error": problem, "config": None})
        else:
            rows.append({"run": config.run_id, **run_row(config, store), "config": config})
    return rows


def _regime(result: RunResult) -> int | None:
    """The regime of a finished run, or ``None`` for a run with too few evaluated epochs to tell."""
    try:
        return classify(result.metrics, DATASET_INFO[result.config.dataset].num_classes)
    except ValueError:
        return None

