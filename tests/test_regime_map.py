"""The regime map of your own network (sphere_regimes.regime_map, `sphere-regimes map`): a tiny network on a
few hundred images brackets a boundary, a rerun trains nothing, an edited model is a new run, and a factory
that cannot train on the sphere is refused in one line."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import tiny_networks  # tests/tiny_networks.py
import torch

from sphere_regimes import chapters, engine, paths
from sphere_regimes.cli import main
from sphere_regimes.factories import build_model, factory_model
from sphere_regimes.regime_map import MapSetting, map_regimes
from sphere_regimes.regimes import RegimeRule
from sphere_regimes.store import RunStore

SMALL = {"elr_range": (0.01, 10.0), "epochs": 3, "seeds": 1, "points_per_decade": 1, "factor": 3.5,
         "train_size": 256}


@pytest.fixture(scope="module")
def mapped(fashion_mnist, tmp_path_factory):
    """The map of the tiny network, computed once for the module (its store is then only read)."""
    store = tmp_path_factory.mktemp("map") / "store"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return map_regimes(tiny_networks.tiny_net, "fashion_mnist", store=store, **SMALL), store
    finally:
        torch.set_num_threads(threads)


def test_a_tiny_network_brackets_a_boundary_to_the_factor(mapped):
    found, _ = mapped
    regime_of = found.regime_of()
    assert len(found.boundaries) >= 1
    for row in found.boundaries.itertuples():
        below, above = (int(r) for r in row.boundary.split("→"))
        assert regime_of[row.elr_below] == below != above == regime_of[row.elr_above]
        assert row.elr_below < row.midpoint < row.elr_above and row.bracket_factor <= SMALL["factor"] * (1 + 1e-9)
        assert not any(row.elr_below < elr < row.elr_above for elr in regime_of)  # neighbours on the ELR axis
    assert set(found.setting.grid()) <= set(regime_of) and len(regime_of) > len(found.setting.grid())  # bisected
    assert regime_of[10.0] == 3  # at ELR 10 the tiny net stays at chance


def test_a_rerun_trains_nothing_and_writes_the_table_and_figure(mapped, monkeypatch, tmp_path):
    found, store = mapped

    def no_training(*args, **kwargs):
        raise AssertionError("a rerun must not train")

    monkeypatch.setattr(engine, "_Trainer", no_training)
    again = map_regimes(tiny_networks.tiny_net, "fashion_mnist", store=store, **SMALL)
    assert again.boundaries.equals(found.boundaries) and again.runs.equals(found.runs)
    written = again.write(tmp_path / "out")
    assert [p.name for p in written] == ["boundaries.csv", "runs.csv", "regime_map.png"]
    assert all(p.stat().st_size > 0 for p in written)


def test_the_cli_prints_the_boundaries_with_their_brackets(mapped, capsys, tmp_path):
    _, store = mapped
    rc = main(["map", "--model", "tiny_networks:tiny_net", "--store", str(store), "--out", str(tmp_path / "cli"),
               "--elr-range", "0.01", "10", "--epochs", "3", "--points-per-decade", "1", "--factor", "3.5",
               "--train-size", "256", "--rule-moving-angle-deg", "3"])
    out = capsys.readouterr().out
    assert rc == 0 and "between ELR" in out and "boundaries.csv" in out
    assert (tmp_path / "cli" / "regime_map.png").is_file()


def test_an_edited_model_is_a_new_run_and_a_stale_plan_is_refused(tmp_path, monkeypatch):
    source = Path(tiny_networks.__file__)
    shutil.copy(source, tmp_path / "edited_net.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = MapSetting("edited_net:tiny_net").base_config(elr=0.1)
    assert before.factory == "edited_net:tiny_net" and "factory_sha256" in before.hashed_fields()
    (tmp_path / "edited_net.py").write_text(source.read_text() + "\n# an edit\n")
    after = MapSetting("edited_net:tiny_net").base_config(elr=0.1)
    assert after.run_id != before.run_id
    with pytest.raises(ValueError, match="has changed since run"):
        build_model(before, 1, 10)


@pytest.mark.parametrize("model,message", [
    ("no_such_module:net", "cannot import no_such_module"),
    ("tiny_networks:missing", "has no missing"),
    ("tiny_networks:NOT_CALLABLE", "is a int, not a callable"),
    ("tiny_networks:not_a_module", "returned a int, not a torch.nn.Module"),
    ("tiny_networks:no_si", "has no scale-invariant parameters"),
    ("tiny_networks:trainable_head", r"not scale-invariant: 4\.weight, 4\.bias"),
    ("tiny_networks", "MODULE:CALLABLE"),
])
def test_a_bad_model_is_refused_in_one_line(model, message, tmp_path, capsys):
    with pytest.raises(ValueError, match=message) as caught:
        map_regimes(model, store=tmp_path, **SMALL)
    assert "\n" not in str(caught.value)
    assert main(["map", "--model", model, "--store", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err
    assert not list(tmp_path.iterdir())  # refused before any run


def test_a_lambda_is_refused_and_a_head_norm_freezes_the_head():
    with pytest.raises(ValueError, match="module level"):
        map_regimes(lambda: tiny_networks.tiny_net(), **SMALL)
    model = factory_model(tiny_networks.trainable_head, head_norm=5.0)
    assert not model[-1].weight.requires_grad and float(model[-1].weight.norm()) == pytest.approx(5.0)


def test_the_tutorials_committed_map_shows_both_boundaries_bracketed_to_its_factor():
    """The cpu preset's map of the tutorial's network, read from results/ (it trains nothing)."""
    params = chapters.tutorial.Params.from_preset("cpu")
    found = chapters.tutorial.analyse(params, RunStore(paths.REPO_ROOT / "results")).regime_map
    assert {"1→2", "2→3"} <= set(found.boundaries["boundary"])
    assert (found.boundaries["bracket_factor"] <= params.map_factor * (1 + 1e-9)).all()
    assert set(found.regime_of().values()) == {1, 2, 3}


def test_the_cli_has_one_option_per_field_of_the_regime_rule(capsys):
    with pytest.raises(SystemExit):
        main(["map", "--help"])
    text = capsys.readouterr().out
    assert all(f"--rule-{f.name.replace('_', '-')}" in text for f in dataclasses.fields(RegimeRule))
    assert "ConvNetSI-8 / Fashion-MNIST" in text
