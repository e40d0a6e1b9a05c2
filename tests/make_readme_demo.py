"""Rewrite the README's demo block with the table that `sphere-regimes demo` printed (``make readme-demo``).

Usage: ``sphere-regimes demo | python tests/make_readme_demo.py README.md``. The block is the table (its
header line, the rule under it and one row per ELR) between the ``<!-- demo:start -->`` and
``<!-- demo:end -->`` markers; tests/test_readme.py checks that it is what the demo prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

START, END = "<!-- demo:start -->", "<!-- demo:end -->"


def demo_table(output: str) -> list[str]:
    """The table of the demo's output: from its header line to the last row before the blank line."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.split()[:3] == ["ELR", "train", "loss"])
    last = next((i for i in range(first, len(lines)) if not lines[i].strip()), len(lines))
    return lines[first:last]


def replace_block(readme: str, table: list[str]) -> str:
    """``readme`` with the fenced block between the markers replaced by ``table``."""
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n```text\n" + "\n".join(table) + f"\n```\n{END}{after}"


if __name__ == "__main__":
    path = Path(sys.argv[1])
    path.write_text(replace_block(path.read_text(), demo_table(sys.stdin.read())))
    print(f"{path}: demo block rewritten")
