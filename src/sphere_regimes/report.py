"""The book's generated reproducibility page: environment, preset, git SHA, notebook run times."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from .presets import load_preset
from .store import git_sha

_PACKAGES = ("sphere-regimes", "torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "papermill",
             "jupytext", "nbval", "jupyter-book", "sphinx", "myst-nb")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _notebook_row(path: Path) -> str:
    papermill = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
    duration = papermill.get("duration")
    seconds = f"{duration:.1f}" if isinstance(duration, (int, float)) else "n/a"
    return f"| `{path.stem}` | {seconds} | {papermill.get('end_time', 'n/a')} |"


def _training_rows(preset: str) -> list[str]:
    """One table row per notebook with planned runs: count, summed wall time, thread counts used."""
    from .plans import planned_runs, preset_store  # imports the training stack; only needed here

    store = preset_store(preset)
    rows = []
    for notebook, configs in planned_runs(preset).items():
        timings = [store.timing(c) for c in configs]
        hours = sum(t.get("wall_seconds", 0.0) for t in timings) / 3600
        threads = sorted({t["threads"] for t in timings if "threads" in t})
        rows.append(f"| `{notebook}` | {len(configs)} | {hours:.2f} | {', '.join(map(str, threads)) or 'n/a'} |")
    return rows


def reproducibility_page(preset: str, executed: list[Path]) -> str:
    """Markdown for the reproducibility page of a book built with ``preset``."""
    description = load_preset(preset)["description"]
    lines = [
        "# Reproducibility",
        "",
        f"This book was built with the **`{preset}`** preset: {description}",
        "",
        f"- git commit: `{git_sha() or 'unknown'}`",
        f"- Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPU cores",
        "",
        "To rebuild it: `make book PRESET=" + preset + "` (runs missing from the result store are computed "
        "first; the notebooks only read the store).",
        "",
        "## Notebook execution",
        "",
        "| notebook | run time (s) | finished (UTC) |",
        "|---|---|---|",
        *[_notebook_row(path) for path in executed],
        "",
        "## Training runs",
        "",
        "Wall time of the training runs each chapter reads from the result store (one thread per run; a",
        "2-core machine runs two at once), as recorded when the runs were computed:",
        "",
        "| notebook | runs | training (core-hours) | threads per run |",
        "|---|---|---|---|",
        *_training_rows(preset),
        "",
        "## Environment",
        "",
        "| package | version |",
        "|---|---|",
        *[f"| {name} | {_version(name)} |" for name in _PACKAGES],
        "",
        "The exact versions of every package are pinned in `constraints.txt`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the reproducibility page as MyST markdown.")
    parser.add_argument("preset")
    parser.add_argument("executed", nargs="*", type=Path, help="executed notebooks (.ipynb)")
    args = parser.parse_args(argv)
    sys.stdout.write(reproducibility_page(args.preset, args.executed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
