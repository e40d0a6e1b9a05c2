"""Build steps of the book that need a chapter's parameters (the Makefile calls them).

``python -m sphere_regimes.chapters list PRESET``: the chapters the preset lists, one per line;
``python -m sphere_regimes.chapters params PRESET NOTEBOOK``: that chapter's checked parameters as
papermill's YAML.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from .. import presets
from . import params, preset_chapters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sphere_regimes.chapters", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the chapters a preset lists").add_argument("preset")
    writer = commands.add_parser("params", help="a chapter's checked parameters as papermill YAML")
    writer.add_argument("preset")
    writer.add_argument("notebook")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print("\n".join(preset_chapters(args.preset)))
        else:
            print(yaml.safe_dump(params(args.preset, args.notebook).as_notebook(), sort_keys=True), end="")
    except presets.PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
