"""What every chapter module shares: typed parameters, findings, tables and reading runs from a store.

A chapter module (:mod:`.toy`, :mod:`.three_regimes`, :mod:`.conventional`, :mod:`.fine_tuning`,
:mod:`.tutorial`) defines

* ``Params``: a frozen dataclass of :class:`Params`, one field per notebook parameter with its unit and
  meaning beside it; the notebook's ``parameters`` cell holds the same names and defaults (a test
  checks it) and a preset may override them (:meth:`Params.from_preset` rejects unknown names and
  wrong types in one line);
* ``plan(params) -> list[RunConfig]``: the runs the chapter reads (chapters that train nothing have none);
* ``analyse(params, store=None) -> Findings``: every number the chapter glues, every table it shows,
  the data of its figures and its claims (:mod:`sphere_regimes.claims`).
"""

from __future__ import annotations

import dataclasses
import time
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .. import presets
from ..config import RunConfig
from ..data import DATASET_INFO
from ..engine import load
from ..store import RunResult, RunStore
from ..table import Table

P = TypeVar("P", bound="Params")


class ParamsError(presets.PresetError):
    """A chapter parameter is unknown, of the wrong type or out of range."""


class MissingRunsError(RuntimeError):
    """A chapter asked for runs that the store does not hold yet."""


@dataclass(frozen=True)
class Params:
    """The parameters of one chapter. Subclasses add fields with defaults (the ``cpu`` preset's values)."""

    notebook: ClassVar[str] = ""  # the chapter's notebook, e.g. "02_three_regimes"
    preset: str = "cpu"  # name of the preset that set these values

    @classmethod
    def from_mapping(cls: type[P], values: Mapping[str, Any], where: str = "") -> P:
        """The parameters with ``values`` over the defaults; an unknown name, a value of the wrong type or
        a value out of range is a one-line :class:`ParamsError` that says ``where`` to fix it."""
        where = where or f"chapter {cls.notebook!r}"
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ParamsError(f"{where}: unknown parameter(s) {unknown}; the chapter declares {names}")
        hints = typing.get_type_hints(cls)
        try:
            return cls(**{name: _coerce(name, value, hints[name]) for name, value in values.items()})
        except (TypeError, ValueError) as error:
            raise ParamsError(f"{where}: {error}") from None

    @classmethod
    def from_preset(cls: type[P], preset: str) -> P:
        """The parameters that ``preset`` gives this chapter (defaults where it says nothing)."""
        given = presets.load_preset(preset)["notebooks"].get(cls.notebook, {})
        return cls.from_mapping({**given, "preset": preset}, where=presets.where(preset, cls.notebook))

    @classmethod
    def from_namespace(cls: type[P], namespace: Mapping[str, Any]) -> P:
        """The parameters as a notebook's ``globals()`` holds them after papermill's injection."""
        return cls.from_mapping({f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})

    def as_notebook(self) -> dict[str, Any]:
        """The values as a notebook's parameters cell writes them (tuples as lists)."""
        return {name: _as_list(value) for name, value in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class NetworkParams(Params):
    """The network, data and metric schedule that the chapters on real data share."""

    dataset: str = "fashion_mnist"  # fashion_mnist, cifar10 or cifar100
    train_size: int = 10000  # first N training images (0: all of them)
    width: int = 8  # ConvNetSI width: channels of the first conv layer
    batch_size: int = 128  # images per step
    epochs: int = 150  # epochs per run
    dense_metric_epochs: int = 20  # full metrics (train-mode loss, test error, effective gradient) every epoch up to here
    metric_every: int = 5  # ... then every this many epochs
    drop_last_batch: bool = False  # train on whole batches only (N // batch_size steps per epoch), see RunConfig

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_INFO:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {sorted(DATASET_INFO)}")

    @property
    def num_classes(self) -> int:
        return DATASET_INFO[self.dataset].num_classes


def _as_list(value: Any) -> Any:
    return [_as_list(v) for v in value] if isinstance(value, (tuple, list)) else value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type ``hint``: an int where a float is declared becomes a float, a list
    where a tuple is declared becomes a tuple; anything else of another type is a ``TypeError``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(name, value, option)
            except TypeError:
                continue
        raise TypeError(f"parameter {name!r} must be {_type_name(hint)}, got {type(value).__name__} {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"parameter {name!r} must be a list, got {type(value).__name__} {value!r}")
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise TypeError(f"parameter {name!r} must be a list of {len(items)} values, got {value!r}")
        return tuple(_coerce(f"{name}[{i}]", v, item) for i, (v, item) in enumerate(zip(value, items)))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise TypeError(f"parameter {name!r} must be {_type_name(hint)}, got {type(value).__name__} {value!r}")


@dataclass
class Findings:
    """What a chapter computes from its runs: the values it glues into its prose (numbers, and Markdown
    sentences built from them, under their glue names), the tables it shows, and its claims.

    Chapter modules subclass it with typed fields for the data of their figures.
    """

    params: Params
    values: dict[str, Any] = field(default_factory=dict)  # glue name -> number, or a Markdown string
    tables: dict[str, Table] = field(default_factory=dict)  # name -> a table the chapter shows
    claims: list = field(default_factory=list)  # list[sphere_regimes.claims.Claim], in the chapter's order
    key_numbers: list[str] = field(default_factory=list)  # rounded lines the smoke references check (nbval)
    started: float = field(default_factory=time.perf_counter)  # when the analysis began (the page's read time)

    def report(self) -> str:
        """The key numbers and every claim's verdict, one per line (the cell nbval checks)."""
        return "\n".join([*self.key_numbers, *(f"{c.id}: {c.verdict}" for c in self.claims)])


def data_description(dataset: str, train_size: int | None) -> str:
    """How a chapter names its training data: "the first N training images of Title" or "all of Title"."""
    title = DATASET_INFO[dataset].title
    return f"the first {train_size} training images of {title}" if train_size else f"all of {title}"


def core_hours(results: list, store: RunStore) -> float:
    """Training core-hours of ``results`` (wall time x threads is not recorded: the sweeps run one thread
    per run, so this is the sum of their wall times) from ``timing.json`` in ``store``."""
    return sum(store.wall_seconds(r.config) for r in results) / 3600


def load_results(configs: list[RunConfig], store: RunStore, notebook: str = "", preset: str = "") -> list[RunResult]:
    """The finished runs of ``configs`` in ``store``; raises :class:`MissingRunsError` naming what is missing."""
    results = [load(c, store) for c in configs]
    missing = [c for c, r in zip(configs, results) if r is None]
    if missing:
        names = "; ".join(c.label() for c in missing[:5])
        raise MissingRunsError(f"{len(missing)} of {len(configs)} runs of {notebook or 'the chapter'} are not in "
                               f"{store.root} (e.g. {names}); compute them with `sphere-regimes sweep {preset or 'PRESET'}`")
    return results
