"""Run plans: which training runs each chapter needs under a preset.

A chapter registers a function ``plan(params) -> list[RunConfig]`` with :func:`register`;
``params`` are the notebook's parameters as the preset sets them. ``make book`` first calls
:func:`compute` (``sphere-regimes sweep PRESET``), which trains whatever the store lacks with an
executor of :mod:`sphere_regimes.sweep`; the notebooks then only read the store through
:func:`load_results`, so a notebook never trains.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import paths
from .config import STORE_FORMAT, RunConfig
from .data import DATASET_INFO
from .engine import RunResult, load
from .presets import PresetError, load_preset, resolved_params, where
from .regimes import classify
from .store import RunStore
from .sweep import Executor, connected, execute

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


def planned_runs(preset: str, only: str | None = None) -> dict[str, list[RunConfig]]:
    """Every notebook's planned runs under ``preset``, or only those of the chapter ``only`` (its
    notebook name or a unique prefix of it, such as ``02``); a value that makes an invalid run (an ELR
    <= 0, zero epochs, an unknown dataset) is a :class:`PresetError` naming the preset file."""
    notebooks = load_preset(preset)["notebooks"]
    names = [name for name in PLANS if name in notebooks]
    if only is not None:
        names = [name for name in names if name.startswith(only)]
        if len(names) != 1:
            known = [name for name in PLANS if name in notebooks]
            raise PresetError(f"chapter {only!r} names {'no' if not names else 'more than one'} chapter with "
                              f"runs in preset {preset!r}; choose one of {known}")
    planned = {}
    for name in names:
        try:
            planned[name] = PLANS[name](resolved_params(preset, name))
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


def compute(preset: str, store: RunStore | None = None, executor: Executor | None = None,
            only: str | None = None) -> list[RunConfig]:
    """Train every planned run of ``preset`` (or of its chapter ``only``) that the store lacks with
    ``executor`` (default: one process, one thread; :mod:`sphere_regimes.sweep`); returns the failed runs.

    Plans may depend on finished runs (a boundary search plans its next ELRs from the regimes found
    so far), so the plans are evaluated again after each pass until nothing new is planned.
    """
    store = store if store is not None else preset_store(preset)
    note = other_format_note(store)
    if note:
        print(note, flush=True)
    executor = executor if executor is not None else Executor()
    failed: dict[str, RunConfig] = {}
    with connected(executor):
        while True:
            unique = {c.run_id: c for configs in planned_runs(preset, only).values() for c in configs}
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


def load_results(notebook: str, params: dict[str, Any], store: RunStore | None = None) -> list[RunResult]:
    """The finished runs of ``notebook``'s plan; raises :class:`MissingRunsError` naming what is missing."""
    configs = PLANS[notebook](params)
    store = store if store is not None else preset_store(params["preset"])
    results = [load(c, store) for c in configs]
    missing = [c for c, r in zip(configs, results) if r is None]
    if missing:
        names = "; ".join(c.label() for c in missing[:5])
        raise MissingRunsError(f"{len(missing)} of {len(configs)} runs of {notebook} are not in the store "
                               f"(e.g. {names}); compute them with `sphere-regimes sweep {params.get('preset', '?')}`")
    return results


def run_states(preset: str, store: RunStore | None = None, only: str | None = None) -> list[dict[str, Any]]:
    """One row per planned run of ``preset`` (or of its chapter ``only``): notebook, label, state (done,
    diverged, running, interrupted, failed, missing), epochs done of planned, the regime of a finished
    run and the error of a failed one."""
    store = store if store is not None else preset_store(preset)
    rows = []
    for notebook, configs in planned_runs(preset, only).items():
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


from . import experiments  # noqa: E402,F401 - registers the chapters' plans
