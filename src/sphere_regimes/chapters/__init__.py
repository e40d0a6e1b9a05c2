"""The book's chapters as library modules, one per notebook, and the claims ledger across them.

Each module (:mod:`.toy`, :mod:`.three_regimes`, :mod:`.conventional`, :mod:`.fine_tuning`,
:mod:`.tutorial`) has a frozen ``Params`` dataclass; the chapters that read runs have
``plan(params)``, and those that test claims ``analyse(params, store=None) -> Findings`` and a list
``CLAIMS`` of :class:`sphere_regimes.claims.ClaimSpec` (see :mod:`.base`)::

    from sphere_regimes import chapters
    params = chapters.three_regimes.Params.from_preset("cpu")
    findings = chapters.three_regimes.analyse(params)
    findings.tables["regimes"]          # a table the chapter shows
    chapters.ledger("cpu").frame()     # every claim of the book with its verdict
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from .. import presets
from ..claims import Ledger
from ..config import RunConfig
from ..store import RunStore
from . import conventional, fine_tuning, three_regimes, toy, tutorial
from .base import Findings, MissingRunsError, Params, ParamsError, Table, load_results

CHAPTERS: dict[str, ModuleType] = {module.NOTEBOOK: module
                                   for module in (toy, three_regimes, conventional, fine_tuning, tutorial)}
"""Every chapter module under its notebook's name, in book order."""

__all__ = ["CHAPTERS", "Findings", "MissingRunsError", "Params", "ParamsError", "Table", "analysed", "chapter",
           "conventional", "fine_tuning", "ledger", "load_results", "params", "planned_runs", "preset_chapters",
           "three_regimes", "toy", "tutorial"]


def chapter(name: str) -> ModuleType:
    """The chapter module of notebook ``name``."""
    if name not in CHAPTERS:
        raise presets.PresetError(f"unknown chapter {name!r}; the chapters are {list(CHAPTERS)}")
    return CHAPTERS[name]


def params(preset: str, name: str) -> Params:
    """The checked parameters that ``preset`` gives chapter ``name``."""
    return chapter(name).Params.from_preset(preset)


def preset_chapters(preset: str) -> list[str]:
    """The chapters ``preset`` lists, in book order (a preset may leave out a chapter)."""
    listed = presets.load_preset(preset)["notebooks"]
    unknown = sorted(set(listed) - set(CHAPTERS))
    if unknown:
        raise presets.PresetError(f"{presets.preset_path(preset)}: unknown chapter(s) {unknown}; the chapters are "
                                  f"{list(CHAPTERS)}")
    return [name for name in CHAPTERS if name in listed]


def planned_runs(preset: str, only: str | None = None, store: RunStore | None = None) -> dict[str, list[RunConfig]]:
    """Every chapter's planned runs under ``preset``, or only those of the chapter ``only`` (its notebook
    name or a unique prefix of it, such as ``02``); an invalid parameter is a :class:`ParamsError`
    naming the preset file."""
    names = [name for name in preset_chapters(preset) if hasattr(CHAPTERS[name], "plan")]
    if only is not None:
        matching = [name for name in names if name.startswith(only)]
        if len(matching) != 1:
            raise presets.PresetError(f"chapter {only!r} names {'no' if not matching else 'more than one'} chapter "
                                      f"with runs in preset {preset!r}; choose one of {names}")
        names = matching
    store = store if store is not None else presets.preset_store(preset)
    planned = {}
    for name in names:
        module = CHAPTERS[name]
        chapter_params = module.Params.from_preset(preset)
        try:
            planned[name] = module.plan(chapter_params, store)
        except ValueError as error:
            raise presets.PresetError(f"{presets.where(preset, name)}: {error}; fix the preset") from None
    return planned


def analysed(preset: str, store: RunStore | None = None) -> dict[str, Findings]:
    """The findings (:func:`analyse`) of every chapter with claims that ``preset`` lists, by notebook name."""
    listed = preset_chapters(preset)
    return {name: module.analyse(module.Params.from_preset(preset), store)
            for name, module in CHAPTERS.items() if getattr(module, "CLAIMS", []) and name in listed}


def ledger(preset: str, store: RunStore | None = None, findings: Mapping[str, Findings] | None = None) -> Ledger:
    """Every claim of the book with its verdict under ``preset``: the claims of the chapters the preset
    lists are measured (their ``findings``, by default :func:`analysed`), the others are ``not tested here``."""
    findings = analysed(preset, store) if findings is None else findings
    claims = []
    for name, module in CHAPTERS.items():
        if name in findings:
            claims += findings[name].claims
        else:
            claims += [spec.untested(f"preset {preset!r} does not compute chapter {name}")
                       for spec in getattr(module, "CLAIMS", [])]
    return Ledger(preset, claims)
