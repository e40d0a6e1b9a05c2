"""Build steps of the book that need a chapter's parameters (the Makefile calls them).

``python -m sphere_regimes.chapters list PRESET``: the chapters the preset lists, one per line;
``python -m sphere_regimes.chapters params PRESET NOTEBOOK``: that chapter's checked parameters as
papermill's YAML;
``python -m sphere_regimes.chapters inputs PRESET NOTEBOOK DIR``: write the notebook's parameters, the state of
its inputs and the library files it runs into DIR where they changed (:mod:`.build`);
``python -m sphere_regimes.chapters store PRESET``: the preset's result store (:func:`presets.preset_store`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .. import presets
from . import params, preset_chapters
from .build import write_inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sphere_regimes.chapters", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the chapters a preset lists").add_argument("preset")
    writer = commands.add_parser("params", help="a chapter's checked parameters as papermill YAML")
    writer.add_argument("preset")
    writer.add_argument("notebook")
    stamper = commands.add_parser("inputs", help="write a notebook's parameters, inputs and library files where "
                                                 "they changed")
    stamper.add_argument("preset")
    stamper.add_argument("notebook")
    stamper.add_argument("folder", type=Path, help="the notebooks' build folder")
    commands.add_parser("store", help="the preset's result store").add_argument("preset")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print("\n".join(preset_chapters(args.preset)))
        elif args.command == "params":
            print(yaml.safe_dump(params(args.preset, args.notebook).as_notebook(), sort_keys=True), end="")
        elif args.command == "inputs":
            for path in write_inputs(args.preset, args.notebook, args.folder):
                print(f"{path}: changed")
        else:
            print(presets.preset_store(args.preset).root)
    except presets.PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
