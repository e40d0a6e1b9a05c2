"""Run plans: which training runs each chapter needs under a preset.

A chapter registers a function ``plan(params) -> list[RunConfig]`` with :func:`register`;
``params`` are the notebook's parameters as the preset sets them. ``make book`` first calls
:func:`compute` (``python -m sphere_regimes.plans compute PRESET``), which trains whatever the
store lacks; the notebooks then only read the store through :func:`load_results`, so a
notebook never trains.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .config import RunConfig
from .engine import RunFailedError, RunResult, load, run
from .presets import PresetError, load_preset, notebook_params
from .store import RunStore

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
    """Every notebook's planned runs under ``preset``."""
    notebooks = load_preset(preset)["notebooks"]
    return {name: plan(notebook_params(preset, name)) for name, plan in PLANS.items() if name in notebooks}


def compute(preset: str, store: RunStore | None = None) -> list[RunConfig]:
    """Train every planned run of ``preset`` that the store lacks; returns the failed ones."""
    failed = []
    unique = {c.run_id: c for configs in planned_runs(preset).values() for c in configs}
    for index, config in enumerate(unique.values(), 1):
        if load(config, store) is not None:
            continue
        print(f"[{index}/{len(unique)}] {config.label()}", flush=True)
        try:
            run(config, store)
        except RunFailedError as error:
            print(f"  failed: {error}", file=sys.stderr, flush=True)
            failed.append(config)
    return failed


def load_results(notebook: str, params: dict[str, Any], store: RunStore | None = None) -> list[RunResult]:
    """The finished runs of ``notebook``'s plan; raises :class:`MissingRunsError` naming what is missing."""
    configs = PLANS[notebook](params)
    results = [load(c, store) for c in configs]
    missing = [c for c, r in zip(configs, results) if r is None]
    if missing:
        names = "; ".join(c.label() for c in missing[:5])
        raise MissingRunsError(f"{len(missing)} of {len(configs)} runs of {notebook} are not in the store "
                               f"(e.g. {names}); compute them with `make runs PRESET={params.get('preset', '?')}`")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute the runs a preset's chapters need.")
    parser.add_argument("command", choices=["compute", "list"])
    parser.add_argument("preset")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for notebook, configs in planned_runs(args.preset).items():
                print(f"{notebook}: {len(configs)} runs")
            return 0
        failed = compute(args.preset)
    except PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
