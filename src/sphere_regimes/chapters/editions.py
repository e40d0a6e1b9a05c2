"""A chapter against its earlier edition: the verdicts that changed, and how the setting changed.

A preset may name the ``earlier_edition`` of the same reproduction (``presets/cpu.yaml``, the second edition, names
``cpu-first-edition``, whose runs stay in the committed store). Each chapter then analyses its earlier edition
too and says which of its verdicts changed, which way, and what differs between the two settings: the
candidates for why (issue 17, point 5). Which difference caused a change is not computed; the prose says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd

from .. import presets
from ..table import Table
from .base import Findings, P


def earlier_params(params: P) -> P | None:
    """The chapter's parameters under the earlier edition of ``params.preset``, or ``None`` when it has none."""
    earlier = presets.load_preset(params.preset)["earlier_edition"]
    return type(params).from_preset(earlier) if earlier else None


def earlier_findings(params: P, analyse: Callable[[P], Findings]) -> Findings | None:
    """The chapter's findings under its earlier edition (``analyse`` of :func:`earlier_params`), or ``None``."""
    earlier = earlier_params(params)
    return analyse(earlier) if earlier is not None else None


def sphere_setting_md(sphere_preset: str, kept: str) -> str:
    """How a chapter that reads the three-regimes setting of another preset (``sphere_preset``) names it:
    "the same preset", or that preset with what it keeps from it (``kept``: "runs and map", say)."""
    return (f"preset `{sphere_preset}` (this preset does not recompute the chapter: its {kept} are that preset's)"
            if sphere_preset else "the same preset")


def setting_changes(earlier: P, params: P) -> list[str]:
    """Each parameter whose value differs between the two editions, in words: ``name a → b``, or for a list
    the values added and removed."""
    changes = []
    for field in dataclasses.fields(params):
        before, after = getattr(earlier, field.name), getattr(params, field.name)
        if field.name == "preset" or before == after:
            continue
        if isinstance(before, tuple) and isinstance(after, tuple) and all(not isinstance(v, tuple) for v in before + after):
            added, removed = [v for v in after if v not in before], [v for v in before if v not in after]
            words = [f"added {', '.join(map(_value, added))}"] * bool(added) + \
                    [f"removed {', '.join(map(_value, removed))}"] * bool(removed)
            changes.append(f"`{field.name}` {'; '.join(words) or 'reordered'}")
        else:
            changes.append(f"`{field.name}` {_value(before)} → {_value(after)}")
    return changes


def _value(value: object) -> str:
    """A parameter's value in words: floats in ``g`` format, lists in brackets, the empty string as ``""``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_value, value)) + "]"
    return str(value) if value != "" else '""'


def verdict_changes(earlier: list, claims: list) -> pd.DataFrame:
    """Every claim of either edition with both verdicts and both measurements (``ours``), one row each, and
    whether the verdict changed (a claim new in this edition counts as changed from "absent")."""
    before = {c.id: c for c in earlier}
    rows = [{"claim": c.id, "earlier": str(before[c.id].verdict) if c.id in before else "absent",
             "now": str(c.verdict), "earlier_ours": before[c.id].ours if c.id in before else "", "ours": c.ours}
            for c in claims]
    rows += [{"claim": c.id, "earlier": str(c.verdict), "now": "absent", "earlier_ours": c.ours, "ours": ""}
             for c in earlier if c.id not in {row["claim"] for row in rows}]
    frame = pd.DataFrame(rows, columns=["claim", "earlier", "now", "earlier_ours", "ours"])
    return frame.assign(changed=frame["earlier"] != frame["now"])


def compare(findings: Findings, earlier: Findings | None, on_earlier_instances: list | None = None) -> None:
    """Adds to ``findings`` the table ``edition_changes`` (the claims whose verdict changed) and the sentence
    ``edition_md``. ``on_earlier_instances``: the chapter's claims recomputed on this edition's runs at the earlier
    edition's instances only (the same ELRs, say); with them each change is told apart into one that shows
    already there (the setting changed under the same instances) and one that needs the new instances."""
    if earlier is None:
        findings.values["edition_md"] = "This preset names no earlier edition to compare its verdicts with."
        findings.tables["edition_changes"] = Table(pd.DataFrame())
        return
    table = verdict_changes(earlier.claims, findings.claims)
    if on_earlier_instances is not None:
        same = {c.id: str(c.verdict) for c in on_earlier_instances}
        table.insert(2, "same_instances", table["claim"].map(same).fillna("absent"))
    changed = table[table["changed"]]
    settings = setting_changes(earlier.params, findings.params)
    findings.values["edition_md"] = (
        f"Against the earlier edition (preset `{earlier.params.preset}`), {len(changed)} of this chapter's "
        f"{len(findings.claims)} verdicts changed"
        + (": " + "; ".join(f"`{r.claim}` {r.earlier} → {r.now}" for r in changed.itertuples()) if len(changed) else "")
        + ". The chapter's setting differs in " + ("; ".join(settings) if settings else "nothing") + ". "
        + ("" if changed.empty else _attribution(changed) if on_earlier_instances is not None else
           "Which of these differences moved a verdict is not computed here.")).strip()
    findings.tables["edition_changes"] = Table(
        changed.drop(columns="changed"), show_index=False,
        headings={"claim": "claim", "earlier": f"verdict ({earlier.params.preset})",
                  "same_instances": "this preset, at the earlier instances only", "now": "verdict (this preset)",
                  "earlier_ours": f"measured ({earlier.params.preset})", "ours": "measured (this preset)"})


def _attribution(changed: pd.DataFrame) -> str:
    """How many changes show already at the earlier edition's instances, and how many only with the new ones."""
    at_same = changed["same_instances"] != changed["earlier"]
    moved_on = changed["same_instances"] != changed["now"]
    return (f"Recomputed on this preset's runs at the earlier edition's instances only, {int(at_same.sum())} of "
            f"the changes show already there (the setting changed under the same instances) and "
            f"{int(moved_on.sum())} come with the new instances (a change may do both).")
