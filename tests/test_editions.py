"""A chapter against its earlier edition: which verdicts changed, and how the setting changed."""

from __future__ import annotations

import dataclasses

import pytest

from sphere_regimes import paths, presets
from sphere_regimes.chapters import editions, three_regimes
from sphere_regimes.chapters.base import Findings
from sphere_regimes.claims import ClaimSpec, Verdict


def _claim(claim_id: str, verdict: Verdict, ours: str = "x"):
    spec = ClaimSpec(claim_id, "02_three_regimes", "s", "§", "", "q", "r")
    return spec.untested("n/a") if verdict is Verdict.NOT_TESTED else spec.measured(ours, 1.0, verdict, "", "")


def test_the_setting_changes_name_every_parameter_that_differs_and_nothing_else():
    first = three_regimes.Params(preset="a")
    second = dataclasses.replace(first, preset="b", drop_last_batch=True, elrs=(1e-5, *first.elrs[1:]),
                                 bisection_steps=2)
    assert editions.setting_changes(first, second) == [
        "`drop_last_batch` False → True", "`elrs` added 1e-05; removed 0.0001", "`bisection_steps` 1 → 2"]
    assert editions.setting_changes(first, dataclasses.replace(first, preset="c")) == []


def test_a_verdict_change_is_listed_with_both_measurements_and_a_claim_new_in_this_edition_counts():
    earlier = [_claim("a.one", Verdict.HELD, "1 of 1"), _claim("a.two", Verdict.PARTLY, "old")]
    now = [_claim("a.one", Verdict.HELD, "2 of 2"), _claim("a.two", Verdict.HELD, "new"),
           _claim("a.three", Verdict.NOT_TESTED)]
    table = editions.verdict_changes(earlier, now).set_index("claim")
    assert table["changed"].to_dict() == {"a.one": False, "a.two": True, "a.three": True}
    assert table.loc["a.two", ["earlier", "now", "earlier_ours", "ours"]].tolist() == ["partly", "held", "old", "new"]
    assert table.loc["a.three", "earlier"] == "absent"


def test_the_chapter_sentence_counts_the_changes_and_names_the_setting_s(monkeypatch):
    earlier = Findings(params=three_regimes.Params(preset="first"), claims=[_claim("a.one", Verdict.PARTLY)])
    findings = Findings(params=dataclasses.replace(earlier.params, preset="second", drop_last_batch=True),
                        claims=[_claim("a.one", Verdict.HELD)])
    editions.compare(findings, earlier)
    sentence = findings.values["edition_md"]
    assert "1 of this chapter's 1 verdicts changed: `a.one` partly → held" in sentence
    assert "`drop_last_batch` False → True" in sentence
    assert list(findings.tables["edition_changes"].frame["claim"]) == ["a.one"]
    alone = Findings(params=earlier.params, claims=earlier.claims)
    editions.compare(alone, None)
    assert alone.tables["edition_changes"].frame.empty and "no earlier edition" in alone.values["edition_md"]


def test_a_preset_s_earlier_edition_gives_the_chapter_its_parameters_and_a_bad_one_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PRESETS_DIR", tmp_path)
    (tmp_path / "first.yaml").write_text("notebooks:\n  02_three_regimes:\n    bisection_steps: 1\n")
    (tmp_path / "second.yaml").write_text("earlier_edition: first\nnotebooks:\n  02_three_regimes:\n"
                                          "    bisection_steps: 2\n")
    (tmp_path / "bad.yaml").write_text("earlier_edition: nowhere\n")
    earlier = editions.earlier_params(three_regimes.Params.from_preset("second"))
    assert (earlier.preset, earlier.bisection_steps) == ("first", 1)
    assert editions.earlier_params(three_regimes.Params.from_preset("first")) is None
    with pytest.raises(presets.PresetError, match="earlier_edition must name another preset"):
        presets.load_preset("bad")
