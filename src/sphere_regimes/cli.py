"""Command line.

* ``sphere-regimes demo``: train a small ELR sweep and print its regime table;
* ``sphere-regimes sweep PRESET``: compute every run the preset's chapters need (parallel workers);
* ``sphere-regimes status PRESET``: a table of those runs (done, running, interrupted, failed, missing).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import torch

from . import paths, plans
from .config import RunConfig
from .data import DATASET_INFO, DataNotFoundError
from .engine import run
from .presets import PresetError
from .regimes import REGIME_NAMES, classify
from .store import RunStore, StoreError


def _demo(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    store = RunStore(args.results)
    print(f"Demo sweep: ConvNetSI width {args.width} on the first {args.train_size} Fashion-MNIST training "
          f"images, batch 128, {args.epochs} epochs per ELR, store {store.root}")
    header = f"{'ELR':>8} {'train loss':>11} {'test error':>11} {'eff. grad':>10} {'deg/epoch':>10}  regime"
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    for elr in args.elrs:
        config = RunConfig(dataset="fashion_mnist", train_size=args.train_size, width=args.width, elr=elr,
                           epochs=args.epochs, seed=args.seed)
        result = run(config, store)
        final = result.final
        regime = classify(result.metrics, DATASET_INFO[config.dataset].num_classes)
        print(f"{elr:>8.0e} {final['train_loss']:>11.4f} {final['test_error']:>11.3f} "
              f"{final['effective_grad_norm']:>10.3g} {final['angle_epoch_deg']:>10.1f}  "
              f"{regime} ({REGIME_NAMES[regime]})", flush=True)
    print(f"\n{len(args.elrs)} runs in {time.perf_counter() - start:.0f} s. Regimes are labelled at a budget of "
          f"{args.epochs} epochs: short runs blur the 1/2 boundary (see sphere_regimes.regimes).")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    failed = plans.compute(args.preset, workers=args.workers)
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    rows = plans.run_states(args.preset)
    print(f"{'notebook':<20} {'run':<16} {'state':<11} {'epochs':>9} {'regime':>6}  label")
    for row in rows:
        regime = "" if row["regime"] is None else str(row["regime"])
        print(f"{row['notebook']:<20} {row['run']:<16} {row['state']:<11} {row['epochs']:>9} {regime:>6}  "
              f"{row['label']}")
    counts = Counter(row["state"] for row in rows)
    store = plans.preset_store(args.preset)
    print(f"\n{len(rows)} planned runs of preset {args.preset!r} in {store.root}: "
          + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    note = plans.other_format_note(store)
    if note:
        print(note)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sphere-regimes", description=(
        "Train scale-invariant networks on the sphere at a fixed effective learning rate (ELR) and see the "
        "three regimes of Kodryan et al. (NeurIPS 2022)."))
    commands = parser.add_subparsers(dest="command", required=True)
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
    sweep = commands.add_parser("sweep", help="compute every run a preset's chapters need",
                                description="Train every run that the preset's run plans declare and the store "
                                            "lacks: finished runs are skipped, interrupted ones resumed.")
    sweep.add_argument("preset", help="smoke, cpu, gpu or paper (presets/*.yaml)")
    sweep.add_argument("--workers", type=int, default=2,
                       help="parallel processes of one thread each (default 2: best on a 2-core CPU)")
    sweep.set_defaults(handler=_sweep)
    status = commands.add_parser("status", help="table of a preset's planned runs and their state",
                                 description="List every planned run of the preset with its state (done, "
                                             "diverged, running, interrupted, failed, missing) and regime.")
    status.add_argument("preset", help="smoke, cpu, gpu or paper (presets/*.yaml)")
    status.set_defaults(handler=_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, DataNotFoundError, StoreError, PresetError) as error:
        print(f"sphere-regimes: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
