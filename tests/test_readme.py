"""The README's demo block is the table that `sphere-regimes demo` prints: its header, and rows that the
demo's own row formatter writes back identically from their values, with the regime labels it uses."""

from __future__ import annotations

import re

import make_readme_demo
from sphere_regimes import paths
from sphere_regimes.cli import DEMO_HEADER, demo_row
from sphere_regimes.regimes import REGIME_NAMES

ROW = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d) \((.+)\)")


def _block() -> list[str]:
    readme = (paths.REPO_ROOT / "README.md").read_text()
    block = readme.split(make_readme_demo.START, 1)[1].split(make_readme_demo.END, 1)[0].strip().splitlines()
    assert block[0] == "```text" and block[-1] == "```"
    return block[1:-1]


def test_the_readme_demo_block_is_what_the_demo_prints():
    header, rule, *rows = _block()
    assert header == DEMO_HEADER and rule == "-" * len(DEMO_HEADER) and rows
    for row in rows:
        elr, loss, error, grad, degrees, regime, name = ROW.fullmatch(row).groups()
        assert REGIME_NAMES[int(regime)] == name
        final = {"train_loss": float(loss), "test_error": float(error), "effective_grad_norm": float(grad),
                 "angle_epoch_deg": float(degrees)}
        assert demo_row(float(elr), final, int(regime)) == row


def test_the_rewrite_keeps_the_text_around_the_block():
    output = "Demo sweep: ...\n" + DEMO_HEADER + "\n---\n   1e-03  row\n\n3 runs in 9 s.\n"
    readme = f"intro\n{make_readme_demo.START}\nold\n{make_readme_demo.END}\nafter\n"
    new = make_readme_demo.replace_block(readme, make_readme_demo.demo_table(output))
    assert new == (f"intro\n{make_readme_demo.START}\n```text\n{DEMO_HEADER}\n---\n   1e-03  row\n```\n"
                   f"{make_readme_demo.END}\nafter\n")
