"""Build steps of the book: staging the executed notebooks, the generated reproducibility page (environment,
preset, git SHA, notebook run times) and the generated results pages (:mod:`sphere_regimes.overview`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import nbformat
import yaml

from . import overview, paths
from .chapters import planned_runs
from .presets import load_preset, preset_store
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


def stage(executed: list[Path], chapters: Path) -> None:
    """Copy executed notebooks into the book's chapter folder, folding away (``hide-input``) the
    cell papermill injects with the preset's parameters: the page shows the values, not the code;
    the table of contents beside that folder keeps only the chapters of the preset (:func:`toc_for`) and
    the pages beside it link only to those (:func:`unlink_unstaged`), and the repository button shows where
    ``_config.yml`` gives a repository URL (:func:`book_config`)."""
    chapters.mkdir(parents=True, exist_ok=True)
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            tags = cell.metadata.setdefault("tags", [])
            if "injected-parameters" in tags and "hide-input" not in tags:
                tags.append("hide-input")
        nbformat.write(notebook, chapters / path.name)
    staged = {p.stem for p in executed}
    toc = chapters.parent / "_toc.yml"
    toc.write_text(yaml.safe_dump(toc_for(yaml.safe_load(toc.read_text()), staged, chapters.name), sort_keys=False))
    for page in chapters.parent.glob("*.md"):
        page.write_text(unlink_unstaged(page.read_text(), staged, chapters.name))
    config = chapters.parent / "_config.yml"
    config.write_text(yaml.safe_dump(book_config(yaml.safe_load(config.read_text())), sort_keys=False))


def book_config(config: dict) -> dict:
    """``config`` (the book's ``_config.yml``) with the repository button on exactly when a repository URL is set."""
    url = (config.get("repository") or {}).get("url") or ""
    return {**config, "html": {**config.get("html", {}), "use_repository_button": bool(url)}}


def toc_for(toc: dict, staged: set[str], folder: str = "chapters") -> dict:
    """``toc`` without the chapter pages that the preset does not execute (a preset may leave out a
    chapter whose runs it has not computed yet); pages outside ``folder`` stay."""
    kept = [entry for entry in toc["chapters"]
            if not entry["file"].startswith(f"{folder}/") or entry["file"].split("/", 1)[1] in staged]
    return {**toc, "chapters": kept}


def unlink_unstaged(markdown: str, staged: set[str], folder: str = "chapters") -> str:
    """``markdown`` without links to the chapter pages of ``folder`` that are not ``staged``: a list item that
    opens with such a ``{doc}`` link is dropped with its indented continuation lines, any other such link
    becomes the notebook's path as code (the page stays valid for a preset with any subset of chapters)."""
    def unstaged(match: re.Match) -> bool:
        return match.group("name") not in staged

    link = re.compile(r"\{doc\}`(?:[^`<]*<)?" + re.escape(folder) + r"/(?P<name>[\w.-]+)>?`")
    kept: list[str] = []
    dropping = False
    for line in markdown.splitlines(keepends=True):
        opening = link.match(line[2:]) if line.startswith("- ") else None
        if opening is not None:
            dropping = unstaged(opening)
        elif not line.startswith("  "):
            dropping = False
        if not dropping:
            kept.append(line)
    return link.sub(lambda m: f"`notebooks/{m.group('name')}.py`" if unstaged(m) else m.group(0), "".join(kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build steps of the book: its reproducibility page, its results pages "
                                                 "and its chapters.")
    commands = parser.add_subparsers(dest="command", required=True)
    page = commands.add_parser("page", help="print the reproducibility page as MyST markdown")
    page.add_argument("preset")
    page.add_argument("executed", nargs="*", type=Path, help="executed notebooks (.ipynb)")
    staging = commands.add_parser("stage", help="copy executed notebooks into the book's chapter folder")
    staging.add_argument("chapters", type=Path, help="the book's chapters folder")
    staging.add_argument("executed", nargs="*", type=Path, help="executed notebooks (.ipynb)")
    results = commands.add_parser("overview", help="write the landing page, the differences page and claims.csv")
    results.add_argument("preset")
    results.add_argument("book", type=Path, help="the staged book folder (the pages' templates are in book/)")
    results.add_argument("executed", nargs="*", type=Path, help="executed notebooks (.ipynb): the chapters it shows")
    args = parser.parse_args(argv)
    if args.command == "page":
        sys.stdout.write(reproducibility_page(args.preset, args.executed))
    elif args.command == "overview":
        staged = {p.stem for p in args.executed}
        counts = overview.write(args.preset, paths.REPO_ROOT / "book", args.book, staged).counts()
        print(f"{args.book}: landing page, differences and claims.csv of preset {args.preset!r}: "
              + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    else:
        stage(args.executed, args.chapters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
