"""Command line: ``sphere-regimes demo`` trains a small ELR sweep and prints its regime table."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from . import paths
from .config import RunConfig
from .data import DATASET_INFO, DataNotFoundError
from .engine import run
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, DataNotFoundError, StoreError) as error:
        print(f"sphere-regimes: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
