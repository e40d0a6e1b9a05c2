"""Computing a preset's runs: which runs its chapters plan (``plan`` of each module of
:mod:`sphere_regimes.chapters`), which the store lacks, and their states.

``make book`` first calls :func:`compute` (``sphere-regimes sweep PRESET``), which trains whatever the
store lacks with an executor of :mod:`sphere_regimes.sweep`; the chapters then only read the store,
so a notebook never trains.
"""

from __future__ import annotations

from typing import Any

from . import chapters, presets
from .config import STORE_FORMAT, RunConfig
from .data import DATASET_INFO
from .engine import load
from .regimes import classify
from .store import RunResult, RunStore
from .sweep import Executor, connected, execute


def compute(preset: str, store: RunStore | None = None, executor: Executor | None = None,
            only: str | None = None) -> list[RunConfig]:
    """Train every planned run of ``preset`` (or of its chapter ``only``) that the store lacks with
    ``executor`` (default: one process, one thread; :mod:`sphere_regimes.sweep`); returns the failed runs.

    Plans may depend on finished runs (a boundary search plans its next ELRs from the regimes found
    so far), so the plans are evaluated again after each pass until nothing new is planned.
    """
    store = store if store is not None else presets.preset_store(preset)
    note = other_format_note(store)
    if note:
        print(note, flush=True)
    executor = executor if executor is not None else Executor()
    failed: dict[str, RunConfig] = {}
    with connected(executor):
        while True:
            unique = {c.run_id: c for configs in chapters.planned_runs(preset, only, store).values() for c in configs}
            todo = [c for c in unique.values() if c.run_id not in failed and load(c, store) is None]
            print(f"{preset}: {len(unique)} planned runs, {len(unique) - len(todo) - len(failed)} in the store, "
                  f"{len(todo)} to compute", flush=True)
            if not todo:
                return list(failed.values())
            for config in execute(todo, store, executor):
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


def run_states(preset: str, store: RunStore | None = None, only: str | None = None) -> list[dict[str, Any]]:
    """One row per planned run of ``preset`` (or of its chapter ``only``): notebook, label, state (done,
    diverged, running, interrupted, failed, missing), epochs done of planned, the regime of a finished
    run and the error of a failed one."""
    store = store if store is not None else presets.preset_store(preset)
    rows = []
    for notebook, configs in chapters.planned_runs(preset, only, store).items():
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
                         "epochs": f"{status.epochs_done if status else 0}/{config.epochs}", "regime": regime,
                         "error": status.error if status is not None and state == "failed" else None})
    return rows


def _regime(result: RunResult) -> int | None:
    """The regime of a finished run, or ``None`` for a run with too few evaluated epochs to tell."""
    try:
        return classify(result.metrics, DATASET_INFO[result.config.dataset].num_classes)
    except ValueError:
        return None

