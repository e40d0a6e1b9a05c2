"""Command line.

* ``sphere-regimes demo``: train a small ELR sweep and print its regime table;
* ``sphere-regimes run``: train one run, given by flags or as a preset's planned run;
* ``sphere-regimes sweep PRESET``: compute every run the preset's chapters need, with parallel local
  processes or on a Ray cluster (:mod:`sphere_regimes.sweep`);
* ``sphere-regimes status PRESET``: a table of those runs (done, diverged, running, interrupted,
  failed, corrupt, missing) and their regimes;
* ``sphere-regimes ls``: every run folder of a store, planned or not, with state, regime and final metrics;
* ``sphere-regimes export tensorboard OUT``: a store's runs as TensorBoard event files (:mod:`sphere_regimes.export`).
* ``sphere-regimes map --model MODULE:FACTORY``: the regime map of your own network (:mod:`.regime_map`).

Errors (usage errors too) are one line on stderr with exit status 2; Ctrl-C stops with exit status 130, and the same
command started again resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
import typing
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import torch

from . import chapters, export, paths, plans, presets, regime_map, sweep
from .config import COMPUTE_DTYPES, DATASETS, MODELS, RunConfig
from .data import DATASET_INFO, DataNotFoundError
from .engine import RunFailedError, resolve_device, run, show_progress
from .presets import PresetError
from .regimes import REGIME_NAMES, RegimeRule, classify
from .chapters import MissingRunsError
from .chapters.editions import verdict_changes
from .store import RunStore, StoreError


DEMO_HEADER = f"{'ELR':>8} {'train loss':>11} {'test error':>11} {'eff. grad':>10} {'deg/epoch':>10}  regime"
"""The header of the demo's table (the README's demo block is this table, see ``make readme-demo``)."""


def demo_row(elr: float, final: Mapping[str, float], regime: int) -> str:
    """One row of the demo's table: ELR, the last epoch's train loss, test error, effective gradient norm
    and degrees turned per epoch, and the regime with its name."""
    return (f"{elr:>8.0e} {final['train_loss']:>11.4f} {final['test_error']:>11.3f} "
            f"{final['effective_grad_norm']:>10.3g} {final['angle_epoch_deg']:>10.1f}  "
            f"{regime} ({REGIME_NAMES[regime]})")


def _demo(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    store = RunStore(args.results)
    print(f"Demo sweep: ConvNetSI width {args.width} on the first {args.train_size} Fashion-MNIST training "
          f"images, batch 128, {args.epochs} epochs per ELR, store {store.root}")
    print(DEMO_HEADER)
    print("-" * len(DEMO_HEADER))
    start = time.perf_counter()
    for elr in args.elrs:
        config = RunConfig(dataset="fashion_mnist", train_size=args.train_size, width=args.width, elr=elr,
                           epochs=args.epochs, seed=args.seed)
        result = run(config, store)
        final = result.final
        regime = classify(result.metrics, DATASET_INFO[config.dataset].num_classes)
        print(demo_row(elr, final, regime), flush=True)
    print(f"\n{len(args.elrs)} runs in {time.perf_counter() - start:.0f} s. Regimes are labelled at a budget of "
          f"{args.epochs} epochs: short runs blur the 1/2 boundary (see sphere_regimes.regimes).")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = _run_config(args)
    store = _run_store(args)
    device = resolve_device(config.device, config.compute_dtype)
    print(f"{config.label()} (run {config.run_id}), {config.epochs} epochs on {device}, store {store.root}", flush=True)
    result = run(config, store, progress="bar" if show_progress() else "log")
    status = result.status
    if status.status == "diverged":
        print(f"diverged at epoch {status.diverged_epoch} ({status.diverged_reason})")
        return 0
    final = result.final
    print(f"epoch {final.name}: train loss {final['train_loss']:.4g}, test error {final['test_error']:.3f}, "
          f"effective gradient {final['effective_grad_norm']:.3g}, {final['angle_epoch_deg']:.1f} deg/epoch")
    if config.is_sphere:
        try:
            regime = classify(result.metrics, DATASET_INFO[config.dataset].num_classes)
            print(f"regime {regime} ({REGIME_NAMES[regime]}) at a budget of {config.epochs} epochs")
        except ValueError as error:
            print(f"regime: not labelled ({error})")
    return 0


_RUN_FIELDS = ("dataset", "model", "width", "depth", "constraint", "grouping", "weight_decay", "momentum", "batch_size",
               "epochs", "seed", "augment", "dense_metric_epochs", "metric_every", "sharpness_every", "device",
               "checkpoint_every", "compute_dtype", "drop_last_batch")


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The preset's run ``--run`` (or the defaults of :class:`RunConfig`), changed by the given flags."""
    if args.elr is not None and args.lr is not None:
        raise ValueError("--elr trains on the sphere, --lr with plain SGD: give one of them")
    if args.preset is not None:
        base = _planned_run(args.preset, args.run)
    elif args.run is not None:
        raise ValueError("--run names a run of a preset: add --preset PRESET")
    elif args.elr is None and args.lr is None:
        raise ValueError("say how to train: --elr X (on the sphere at a fixed effective learning rate) or --lr X "
                         "(plain SGD), or --preset PRESET --run RUN_ID for a run that a preset plans")
    else:
        base = RunConfig(elr=args.elr) if args.elr is not None else RunConfig(optimizer="sgd", lr=args.lr)
    changes = {name: getattr(args, name) for name in _RUN_FIELDS if getattr(args, name) is not None}
    if args.train_size is not None:
        changes["train_size"] = args.train_size or None
    if args.elr is not None:
        changes.update(optimizer="sphere", elr=args.elr, lr=None)
    elif args.lr is not None:
        changes.update(optimizer="sgd", lr=args.lr, elr=None)
    return base.replace(**changes)


def _planned_run(preset: str, prefix: str | None) -> RunConfig:
    """The planned run of ``preset`` whose id starts with ``prefix``."""
    if prefix is None:
        raise ValueError(f"--preset {preset} needs --run RUN_ID: one of the run ids that "
                         f"`sphere-regimes status {preset}` lists")
    planned = {c.run_id: c for configs in chapters.planned_runs(preset).values() for c in configs}
    matches = [config for run_id, config in planned.items() if run_id.startswith(prefix)]
    if len(matches) != 1:
        raise ValueError(f"{'no' if not matches else 'more than one'} planned run of preset {preset!r} has an id "
                         f"starting with {prefix!r}; `sphere-regimes status {preset}` lists them")
    return matches[0]


def _run_store(args: argparse.Namespace) -> RunStore:
    if args.results:
        return RunStore(args.results)
    if args.preset is not None:
        return presets.preset_store(args.preset)
    return RunStore(_default_store())


def _default_store() -> str:
    """The store of ``run`` without --results or --preset: SPHERE_REGIMES_RESULTS, else _work/runs."""
    return os.environ.get("SPHERE_REGIMES_RESULTS") or str(paths.WORK_DIR / "runs")


def _sweep(args: argparse.Namespace) -> int:
    workers = args.workers or max(sweep.available_cores() // max(args.threads, 1), 1)
    executor = sweep.Executor(args.executor, workers=workers, threads=args.threads, address=args.address,
                              max_retries=args.max_retries)
    failed = plans.compute(args.preset, executor=executor, only=args.only)
    if failed:
        print(f"{len(failed)} runs failed; `sphere-regimes status {args.preset}` shows their errors", file=sys.stderr)
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    rows = plans.run_states(args.preset, only=args.only)
    print(f"{'notebook':<20} {'run':<16} {'state':<11} {'epochs':>9} {'regime':>6}  label")
    for row in rows:
        print(f"{row['notebook']:<20} {row['run']:<16} {row['state']:<11} {row['epochs']:>9} "
              f"{_blank(row['regime']):>6}  {row['label']}")
    counts = Counter(row["state"] for row in rows)
    store = presets.preset_store(args.preset)
    print(f"\n{len(rows)} planned runs of preset {args.preset!r} in {store.root}: "
          + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    _print_problems(rows)
    note = plans.other_format_note(store)
    if note:
        print(note)
    return 1 if counts["corrupt"] else 0


def _blank(value: object, spec: str = "") -> str:
    return "" if value is None else format(value, spec)


def _print_problems(rows: list[dict]) -> None:
    """The error of each failed run and the problem of each corrupt one, one line each."""
    for row in rows:
        if row["error"]:
            print(f"{row['state']} {row['run']}: {row['error']}")


def _listed_store(args: argparse.Namespace) -> RunStore:
    """The store of ``ls`` and ``export``: --preset's, else --store, else the store of ``run``."""
    return presets.preset_store(args.preset) if args.preset else RunStore(args.store or _default_store())


def _ls(args: argparse.Namespace) -> int:
    store = _listed_store(args)
    for removed in store.remove_stale_locks():
        print(f"removed {removed}: it held only the stale lock of a run that never started", file=sys.stderr)
    rows = plans.store_rows(store)
    if args.chapter is not None:
        if args.preset is None:
            raise ValueError("--chapter lists the runs a chapter plans under a preset: add --preset PRESET")
        planned = {c.run_id for configs in chapters.planned_runs(args.preset, args.chapter, store).values()
                   for c in configs}
        rows = [row for row in rows if row["run"] in planned]
    if args.status is not None:
        rows = [row for row in rows if row["state"] == args.status]
    if args.elr is not None:
        rows = [row for row in rows if row["config"] is not None and row["config"].elr is not None
                and math.isclose(row["config"].elr, args.elr, rel_tol=1e-9)]
    if args.json:
        print(json.dumps([{k: v for k, v in row.items() if k != "config"} for row in rows], indent=1))
    else:
        print(f"{'run':<16} {'state':<11} {'epochs':>9} {'regime':>6} {'train loss':>10} {'test err':>8}  label")
        for row in rows:
            print(f"{row['run']:<16} {row['state']:<11} {row['epochs']:>9} {_blank(row['regime']):>6} "
                  f"{_blank(row['train_loss'], '.4g'):>10} {_blank(row['test_error'], '.3f'):>8}  {row['label']}")
        counts = Counter(row["state"] for row in rows)
        print(f"\n{len(rows)} runs in {store.root}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
        _print_problems(rows)
    return 1 if any(row["state"] == "corrupt" for row in rows) else 0


def _export(args: argparse.Namespace) -> int:
    store = _listed_store(args)
    if not store.root.is_dir():
        raise ValueError(f"there is no result store at {store.root}: give --store DIR or --preset PRESET")
    planned = None
    if args.preset is not None:
        planned = {c.run_id for configs in chapters.planned_runs(args.preset, None, store).values() for c in configs}
    report = export.export_tensorboard(store, args.out, planned)
    for problem in report.problems:
        print(f"left out: {problem}", file=sys.stderr)
    print(f"wrote {len(report.written)} runs of {store.root} to {args.out}"
          + (f" ({len(report.problems)} left out)" if report.problems else "")
          + f"; see them with `tensorboard --logdir {args.out}`")
    return 1 if report.problems else 0


def _claims(args: argparse.Namespace) -> int:
    if args.against:
        return _claims_against(args)
    ledger = chapters.ledger(args.preset)
    frame = ledger.frame()
    if args.csv:
        frame.to_csv(args.csv, index=False)
    width = max(len(claim.id) for claim in ledger.claims)
    for claim in ledger.claims:
        marker = "*" if claim.spec.uses_regime_rule else " "
        print(f"{claim.id:<{width}}  {str(claim.verdict):<15}{marker} {claim.ours}")
    counts = ", ".join(f"{n} {verdict}" for verdict, n in ledger.counts().items() if n)
    print(f"\n{len(ledger.claims)} claims under preset {args.preset!r}: {counts} (* depends on the regime rule)"
          + (f"; the whole ledger is in {args.csv}" if args.csv else "; --csv FILE writes the whole ledger"))
    return 0


def _claims_against(args: argparse.Namespace) -> int:
    """Every claim's verdict under ``--against`` (an earlier edition, say) and under the preset, and both
    measurements; ``--csv`` writes the table."""
    table = verdict_changes(chapters.ledger(args.against).claims, chapters.ledger(args.preset).claims)
    if args.csv:
        table.to_csv(args.csv, index=False)
    width = max(map(len, table["claim"]))
    for row in table.itertuples():
        print(f"{row.claim:<{width}}  {row.earlier:>15} → {row.now:<15}{' changed' if row.changed else ''}")
    print(f"\n{int(table['changed'].sum())} of {len(table)} verdicts differ between presets {args.against!r} and "
          f"{args.preset!r}" + (f"; both measurements are in {args.csv}" if args.csv else "; --csv FILE adds both measurements"))
    return 0


def _map(args: argparse.Namespace) -> int:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # --model names a module of the current folder, as `python -m` finds it
    rule = RegimeRule(**{f.name: getattr(args, f"rule_{f.name}") for f in dataclasses.fields(RegimeRule)
                         if getattr(args, f"rule_{f.name}") is not None})
    store = RunStore(args.store or paths.MAP_STORE_DIR)
    print(f"regime map of {args.model} on {args.dataset}: ELR {args.elr_range[0]:g} to {args.elr_range[1]:g}, "
          f"{args.epochs} epochs, {args.seeds} seed(s), store {store.root}", flush=True)
    executor = sweep.Executor(workers=args.workers, threads=args.threads)
    found = regime_map.map_regimes(args.model, args.dataset, tuple(args.elr_range), args.epochs, args.seeds,
                                   points_per_decade=args.points_per_decade, factor=args.factor,
                                   train_size=args.train_size or None, head_norm=args.head_norm,
                                   batch_size=args.batch_size, rule=rule, store=store, executor=executor)
    print(f"\n{'ELR':>10} {'seed':>4} {'regime':>6} {'train loss':>10} {'deg/epoch':>9}")
    for row in found.runs.itertuples():
        print(f"{row.elr:>10.4g} {row.seed:>4} {row.regime:>6} {row.train_loss:>10.4g} {row.late_angle_deg:>9.3g}")
    print(f"\nboundaries at a budget of {args.epochs} epochs (rule {rule!s}):")
    print(found.report() or "no regime change in this range")
    for path in found.write(args.out):
        print(f"wrote {path}")
    return 0


def _add_rule_options(parser: argparse.ArgumentParser) -> None:
    """One ``--rule-FIELD`` option per field of :class:`RegimeRule` (fields added to the rule appear here)."""
    group = parser.add_argument_group("regime rule (sphere_regimes.regimes.RegimeRule; its defaults were set on "
                                      "ConvNetSI-8 / Fashion-MNIST)")
    hints, defaults = typing.get_type_hints(RegimeRule), RegimeRule()
    for f in dataclasses.fields(RegimeRule):
        kind = hints[f.name]
        flag = "--rule-" + f.name.replace("_", "-")
        if kind is bool:
            group.add_argument(flag, dest=f"rule_{f.name}", action=argparse.BooleanOptionalAction, default=None,
                               help=f"default {getattr(defaults, f.name)}")
        else:
            group.add_argument(flag, dest=f"rule_{f.name}", type=kind if kind in (int, float) else str, default=None,
                               metavar="X", help=f"default {getattr(defaults, f.name)}")


def _add_map_parser(commands: argparse._SubParsersAction) -> None:
    mapper = commands.add_parser(
        "map", help="the regime map of your own network: regimes over an ELR range and their boundaries",
        description="Train your network on the sphere at a log grid of ELRs, label each run's regime with the "
                    "book's rule (1 convergence, 2 chaotic equilibrium, 3 divergence; its defaults were set on "
                    "ConvNetSI-8 / Fashion-MNIST, see the --rule-* options), bisect each boundary until its bracket "
                    "is at most --factor wide, and print and write the boundaries (boundaries.csv), the runs "
                    "(runs.csv) and the figure (regime_map.png). Runs are kept in the store under ids that cover "
                    "the model's import path and source: a rerun reads them, an edited model is a new map; "
                    "Ctrl-C stops, the same command resumes.",
        epilog="example: `sphere-regimes map --model sphere_regimes.examples:small_convnet --elr-range 1e-3 1 "
               "--epochs 25`. MODULE:FACTORY names a module-level function without arguments that returns the "
               "network, with only scale-invariant trainable tensors (conv/linear weights feeding BatchNorm "
               "without affine terms) and a frozen head (or --head-norm)")
    mapper.add_argument("--model", required=True, metavar="MODULE:FACTORY", help="the network's factory")
    mapper.add_argument("--dataset", choices=DATASETS, default="fashion_mnist", help="default fashion_mnist")
    mapper.add_argument("--train-size", type=int, default=2000, metavar="N",
                        help="first N training images (default 2000; 0: all)")
    mapper.add_argument("--elr-range", type=float, nargs=2, default=[1e-3, 1.0], metavar=("A", "B"),
                        help="first and last ELR of the grid (default 1e-3 1)")
    mapper.add_argument("--points-per-decade", type=int, default=2, metavar="N", help="grid ELRs per decade (default 2)")
    mapper.add_argument("--factor", type=float, default=1.5, metavar="F",
                        help="bisect each boundary until its bracket's high/low is at most F (default 1.5)")
    mapper.add_argument("--epochs", type=int, default=25, metavar="N", help="epochs per run (default 25)")
    mapper.add_argument("--seeds", type=int, default=1, metavar="K", help="init seeds per ELR (default 1)")
    mapper.add_argument("--batch-size", type=int, default=128, metavar="N", help="default 128")
    mapper.add_argument("--head-norm", type=float, metavar="X",
                        help="rescale the head (last non-SI linear/conv layer) to this norm and freeze it "
                             "(default: as the factory builds it, which must be frozen)")
    mapper.add_argument("--store", metavar="DIR", help="result store (default: SPHERE_REGIMES_MAP_STORE, else "
                                                       "~/.cache/sphere-regimes/map)")
    mapper.add_argument("--out", default="regime-map", metavar="DIR",
                        help="folder for boundaries.csv, runs.csv and regime_map.png (default regime-map)")
    mapper.add_argument("--workers", type=int, default=1, metavar="N", help="runs at a time (default 1)")
    mapper.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads per run (default 1)")
    _add_rule_options(mapper)
    mapper.set_defaults(handler=_map)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like the program's own, with a hint for a
    negative number (argparse reads ``--elr -1e-3`` as a flag)."""

    def error(self, message: str) -> NoReturn:
        if "expected one argument" in message:
            message += " (a value that starts with '-' goes after '=', as in --elr=-1e-3)"
        self.exit(2, f"sphere-regimes: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sphere-regimes", description=(
        "Train scale-invariant networks on the sphere at a fixed effective learning rate (ELR) and see the "
        "three regimes of Kodryan et al. (NeurIPS 2022)."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser("demo", help="train a small ELR sweep on Fashion-MNIST and print a regime table",
                               description="Train a few ELRs for a few epochs on real Fashion-MNIST and print "
                                           "final train loss, test error, effective gradient norm and regime.")
    demo.add_argument("--elrs", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1], help="effective learning rates")
    demo.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    demo.add_argument("--width", type=int, default=8, help="ConvNetSI width (default 8)")
    demo.add_argument("--train-size", type=int, default=10000, help="first N training images (default 10000)")
    demo.add_argument("--seed", type=int, default=0, help="init and batch-order seed")
    demo.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    demo.add_argument("--results", default=str(paths.WORK_DIR / "demo-results"),
                      help="result store folder (default: _work/demo-results)")
    demo.set_defaults(handler=_demo)
    _add_run_parser(commands)
    sweeper = commands.add_parser(
        "sweep", help="compute every run a preset's chapters need (in parallel, here or on a Ray cluster)",
        description="Train every run that the preset's run plans declare and its result store lacks. Finished "
                    "runs are skipped and interrupted ones resumed, so Ctrl-C is safe: run the same command "
                    "again to go on. A live line shows runs done, epochs per second and the ETA.",
        epilog="examples: `sphere-regimes sweep smoke` (seconds); `sphere-regimes sweep cpu --only 02`; "
               "`sphere-regimes sweep gpu --executor ray --address HEAD_IP:6379` (the store must be on a "
               "filesystem that every node mounts: set SPHERE_REGIMES_RESULTS)")
    sweeper.add_argument("preset", help="smoke, cpu, gpu or paper (presets/*.yaml)")
    sweeper.add_argument("--only", metavar="CHAPTER",
                         help="only this chapter's runs: its notebook name or a prefix such as 02")
    sweeper.add_argument("--executor", choices=sweep.EXECUTORS, default="local",
                         help="local: processes on this machine (default); ray: one Ray task per run "
                              "(pip install 'sphere-regimes[ray]')")
    sweeper.add_argument("--workers", type=int, default=0, metavar="N",
                         help="runs at a time: local processes, or the CPUs of a Ray instance started here "
                              f"(default: one per core / threads, {sweep.available_cores()} here; with one GPU and "
                              "large models, use 1)")
    sweeper.add_argument("--threads", type=int, default=1, metavar="N",
                         help="torch threads per run (default 1: on a 2-core CPU two single-thread runs train "
                              "1.2-1.4x faster than one two-thread run)")
    sweeper.add_argument("--address", metavar="HOST:PORT", help="Ray cluster to use, HOST:PORT of its head (default: RAY_ADDRESS, else "
                                           "a Ray instance started on 127.0.0.1 for this sweep)")
    sweeper.add_argument("--max-retries", type=int, default=3, metavar="N",
                         help="Ray: times a run is restarted (from its checkpoint) after its worker died")
    sweeper.set_defaults(handler=_sweep)
    status = commands.add_parser("status", help="table of a preset's planned runs and their state",
                                 description="List every planned run of the preset with its state (done, "
                                             "diverged, running, interrupted, failed, missing), epochs and regime "
                                             "(1 convergence, 2 chaotic equilibrium, 3 divergence), and the "
                                             "error of each failed run.")
    status.add_argument("preset", help="smoke, cpu, gpu or paper (presets/*.yaml)")
    status.add_argument("--only", metavar="CHAPTER", help="only this chapter's runs (notebook name or prefix)")
    status.set_defaults(handler=_status)
    lister = commands.add_parser(
        "ls", help="list every run folder of a store (planned by a preset or not)",
        description="List every run of a result store, whether a preset plans it or not, with its state (done, "
                    "diverged, running, interrupted, failed, corrupt), epochs, regime (sphere runs), final train "
                    "loss and test error, id and label. A corrupt run is listed with its one-line problem and "
                    "the exit status is then 1. Folders that hold only the stale lock of a run that never "
                    "started are removed.",
        epilog="examples: `sphere-regimes ls` (the store of `sphere-regimes run`); `sphere-regimes ls --preset "
               "cpu --chapter 02 --status done`; `sphere-regimes ls --store results --elr 0.001 --json`")
    _add_store_choice(lister, "the store of this preset (results/ for smoke, cpu, gpu and paper)")
    lister.add_argument("--chapter", metavar="NN", help="only the runs this chapter plans (needs --preset)")
    lister.add_argument("--status", choices=("done", "diverged", "running", "interrupted", "failed", "corrupt"),
                        help="only runs in this state")
    lister.add_argument("--elr", type=float, metavar="X", help="only sphere runs at this ELR")
    lister.add_argument("--json", action="store_true", help="print the rows as JSON")
    lister.set_defaults(handler=_ls)
    _add_export_parser(commands)
    ledger = commands.add_parser("claims", help="the claims ledger: every claim of the paper with its verdict on a preset",
                                 description="Measure every claim of the paper that the book tests on the preset's "
                                             "stored runs and print its verdict (held, partly, not held, not tested "
                                             "here), decided by the rule written in each chapter's CLAIMS.")
    ledger.add_argument("preset", help="smoke, cpu, gpu or paper (presets/*.yaml)")
    ledger.add_argument("--csv", metavar="FILE", help="also write the whole ledger (rules, margins, reasons) as CSV")
    ledger.add_argument("--against", metavar="PRESET", help="compare every verdict with this preset's (an earlier "
                                                              "edition, say): both verdicts and, with --csv, both measurements")
    ledger.set_defaults(handler=_claims)
    _add_map_parser(commands)
    return parser


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    exporter = commands.add_parser(
        "export", help="write a store's runs for another tool (TensorBoard)",
        description="Write every run of a result store as TensorBoard event files, one folder per run (its label "
                    "and id) under OUT: each metrics.csv column as a scalar series (step = epoch) and the run's "
                    "hyperparameters (ELR or lr and weight decay, seed, constraint, regime, status, ...) for "
                    "the HParams dashboard. Needs the tensorboard package: " + export.INSTALL_HINT + ".",
        epilog="example: `sphere-regimes export tensorboard _work/tb --preset cpu && tensorboard --logdir _work/tb`")
    exporter.add_argument("format", choices=("tensorboard",), help="what to write (tensorboard)")
    exporter.add_argument("out", type=Path, metavar="OUT", help="folder for the event files (made if missing)")
    _add_store_choice(exporter, "the runs this preset plans, from its store")
    exporter.set_defaults(handler=_export)


def _add_store_choice(parser: argparse.ArgumentParser, preset_help: str) -> None:
    """``--store DIR`` or ``--preset P`` (:func:`_listed_store`)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="DIR", help="the store folder (default: SPHERE_REGIMES_RESULTS, else "
                                                      "_work/runs, where `sphere-regimes run` writes)")
    where.add_argument("--preset", help=preset_help)


def _add_run_parser(commands: argparse._SubParsersAction) -> None:
    one = commands.add_parser(
        "run", help="train one run, from flags or a preset's planned run",
        description="Train one run and print its final metrics and regime. Give --elr (or --lr) and any other "
                    "flags, or --preset PRESET --run RUN_ID (an id from `sphere-regimes status PRESET`, or its "
                    "first digits) to train a run that the preset plans; other flags then change it. A run that "
                    "is in the store is read, an interrupted one resumed, a shorter one extended.",
        epilog="example: `sphere-regimes run --elr 1e-3 --width 8 --train-size 10000 --epochs 20`")
    source = one.add_argument_group("which run")
    source.add_argument("--preset", help="take the run from this preset's plans (see --run)")
    source.add_argument("--run", metavar="RUN_ID", help="id (or its first digits) of a run the preset plans")
    data = one.add_argument_group("data and network")
    data.add_argument("--dataset", choices=DATASETS, help="default fashion_mnist")
    data.add_argument("--train-size", type=int, metavar="N", help="first N training images (default, or 0: all)")
    data.add_argument("--model", choices=MODELS, help="default convnet_si (the *_af models need --lr)")
    data.add_argument("--width", type=int, metavar="N", help="channels of the first conv layer (default 32)")
    data.add_argument("--depth", type=int, metavar="N", help="ConvNet conv blocks (default 3)")
    optimizer = one.add_argument_group("optimizer: --elr on the sphere, or --lr for plain SGD")
    optimizer.add_argument("--elr", type=float, metavar="X", help="effective learning rate on the sphere, lr / ||w||^2")
    optimizer.add_argument("--constraint", choices=("total", "individual"),
                           help="sphere: fix the total norm (default) or each layer's/filter's")
    optimizer.add_argument("--grouping", choices=("layer", "filter"), help="individual constraint: per layer "
                                                                           "(default) or per filter")
    optimizer.add_argument("--lr", type=float, metavar="X", help="plain SGD learning rate")
    optimizer.add_argument("--weight-decay", type=float, metavar="X", help="SGD: L2 coefficient (default 0)")
    optimizer.add_argument("--momentum", type=float, metavar="X", help="SGD: heavy-ball momentum (default 0)")
    schedule = one.add_argument_group("schedule")
    schedule.add_argument("--epochs", type=int, metavar="N", help="epochs to train (default 1)")
    schedule.add_argument("--batch-size", type=int, metavar="N", help="default 128")
    schedule.add_argument("--seed", type=int, metavar="N", help="init and batch-order seed (default 0)")
    schedule.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                          help="random crop and flip (default off)")
    schedule.add_argument("--drop-last-batch", action=argparse.BooleanOptionalAction, default=None,
                          help="train (and take the train-mode metrics) on whole batches only: N // batch-size "
                               "steps per epoch (default off: the last, partial batch is kept)")
    schedule.add_argument("--dense-metric-epochs", type=int, metavar="N",
                          help="full metrics every epoch up to this one (default 20) ...")
    schedule.add_argument("--metric-every", type=int, metavar="N", help="... then every this many epochs (default 1)")
    schedule.add_argument("--sharpness-every", type=int, metavar="N", help="Hutchinson sharpness every N epochs (default 0: never)")
    execution = one.add_argument_group("execution")
    execution.add_argument("--device", help="auto (default: CUDA if present), cpu, cuda, cuda:1, ...")
    execution.add_argument("--compute-dtype", choices=COMPUTE_DTYPES,
                           help="precision of the forward/backward passes: float32 (default) or bfloat16 "
                                "(autocast; weights, optimizer step and metric sums stay float32)")
    execution.add_argument("--checkpoint-every", type=int, metavar="N", help="resume checkpoint every N epochs (default 1)")
    execution.add_argument("--threads", type=int, metavar="N", default=0, help="torch threads (default: torch's choice)")
    execution.add_argument("--results", help="result store folder (default: the preset's store with --preset, "
                                             "else SPHERE_REGIMES_RESULTS or _work/runs)")
    one.set_defaults(handler=_run)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so that a sweep stops its workers as on Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> NoReturn:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return args.handler(args)
    except (ValueError, DataNotFoundError, StoreError, PresetError, RunFailedError, sweep.SweepError,
            MissingRunsError, export.ExportError) as error:
        print(f"sphere-regimes: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sphere-regimes ls | head`: the reader has gone, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as interrupt:
        print("\nsphere-regimes: interrupted. Finished runs are kept; run the same command again to resume the "
              "others from their last checkpoint.", file=sys.stderr)
        return 143 if isinstance(interrupt, _Terminated) else 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
