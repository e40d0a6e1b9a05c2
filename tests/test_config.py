"""RunConfig: validation before any work, and a stable hash that names each run."""

from __future__ import annotations

import dataclasses

import pytest

from sphere_regimes import RunConfig
from sphere_regimes.config import STORE_FORMAT


def test_run_id_is_stable_across_versions():
    # A golden value: if this changes, every stored run is orphaned. Bump STORE_FORMAT deliberately instead.
    assert STORE_FORMAT == 1
    assert RunConfig(width=8, train_size=10000, elr=1e-3).run_id == "2c2ef45063cac0f3"


def test_run_id_ignores_length_and_execution_details():
    config = RunConfig(width=8, elr=1e-3, epochs=10)
    assert config.run_id == config.replace(epochs=200, device="cpu", checkpoint_every=5).run_id
    for change in ({"elr": 2e-3}, {"seed": 1}, {"width": 16}, {"constraint": "individual"},
                   {"train_size": 100}, {"dense_metric_epochs": 5}, {"dtype": "float64"}):
        assert config.replace(**change).run_id != config.run_id, change


def test_adding_a_field_with_its_default_keeps_old_run_ids():
    extended = dataclasses.make_dataclass(
        "ExtendedConfig", [("new_knob", float, dataclasses.field(default=0.5, metadata={"hash": "if_not_default"}))],
        bases=(RunConfig,), frozen=True)
    old = RunConfig(width=8, elr=1e-3)
    assert extended(width=8, elr=1e-3).run_id == old.run_id
    assert extended(width=8, elr=1e-3, new_knob=0.7).run_id != old.run_id


def test_round_trip_and_unknown_keys():
    config = RunConfig(width=8, elr=1e-3, train_size=500, augment=True)
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown RunConfig field.*'learning_rate'"):
        RunConfig.from_dict({**config.to_dict(), "learning_rate": 0.1})


@pytest.mark.parametrize("changes,message", [
    ({"elr": 0.0}, "elr must be > 0"),
    ({"elr": -1e-3}, "elr must be > 0"),
    ({"elr": float("nan")}, "elr must be a finite number"),
    ({"elr": float("inf")}, "elr must be a finite number"),
    ({"elr": None}, "needs elr"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"model": "vgg"}, "unknown model 'vgg'"),
    ({"optimizer": "adam"}, "unknown optimizer 'adam'"),
    ({"constraint": "joint"}, "unknown constraint"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": -5}, "epochs must be a positive integer"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"train_size": 0}, "train_size must be a positive integer"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"head_norm": 0.0}, "head_norm must be > 0"),
    ({"lr": 0.1}, "takes elr only"),
    ({"model": "convnet_af"}, "train it with optimizer 'sgd'"),
    ({"augment": "yes"}, "augment must be True or False"),
])
def test_invalid_sphere_configs_raise_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{"elr": 1e-3, **changes})


@pytest.mark.parametrize("changes,message", [
    ({"lr": None}, "needs lr"),
    ({"lr": -0.1}, "lr must be > 0"),
    ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
    ({"momentum": 1.0}, "momentum must be < 1"),
    ({"elr": 1e-3}, "leave elr unset"),
])
def test_invalid_sgd_configs_raise_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{"optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-3, **changes})


def test_metric_schedule():
    config = RunConfig(elr=1e-3, epochs=100, dense_metric_epochs=10, metric_every=25)
    assert [e for e in range(101) if config.has_full_metrics(e)] == list(range(11)) + [25, 50, 75, 100]
    assert config.replace(epochs=90).has_full_metrics(90)
