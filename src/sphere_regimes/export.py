"""Export a result store for other tools: TensorBoard event files (``sphere-regimes export tensorboard``).

:func:`export_tensorboard` writes one folder per run under ``OUT`` (named by its label and id, see
:func:`run_folder_name`) holding

* every column of the run's metrics.csv as a scalar series, step = epoch (0 = the initial point), the
  epochs where the column is empty (NaN: a metric not computed that epoch) left out; TensorBoard stores
  the values as float32;
* its hyperparameters for TensorBoard's HParams dashboard (:func:`hyperparameters`: the configuration,
  state, regime and, for a finished SGD run with weight decay, its equilibrium ELR). Each run writes only
  its own session, no shared experiment summary, so TensorBoard builds the table from every run's values.

``tensorboard --logdir OUT`` then shows the sweep. Writing needs the ``tensorboard`` package (an extra:
``pip install 'sphere-regimes[tensorboard]'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig
from .engine import load
from .labels import settled_elr
from .plans import run_row
from .store import RunResult, RunStore, StoreError

INSTALL_HINT = "pip install 'sphere-regimes[tensorboard]'"
_CONFIG_HPARAMS = ("optimizer", "dataset", "train_size", "model", "width", "depth", "head_norm", "elr",
                   "constraint", "lr", "weight_decay", "momentum", "batch_size", "seed", "augment", "dtype",
                   "compute_dtype", "init_from", "epochs")
_EVENT_FILES = "events.out.tfevents.*"


class ExportError(RuntimeError):
    """An export that cannot start (no tensorboard package, nothing to export)."""


@dataclass
class ExportReport:
    """What an export wrote: the run folders, and the one-line problem of each run it left out."""

    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_folder_name(config: RunConfig, label: str) -> str:
    """The run's folder under OUT: its ``label`` (:meth:`RunConfig.label`, or a fine-tuning run's
    :func:`sphere_regimes.labels.describe`, which never change as the run goes on) with every run of characters other than letters, digits,
    ``.``, ``+`` and ``-`` turned into one ``_``, then ``__`` and the run id (unique, readable in
    TensorBoard's run list)."""
    return f"{re.sub(r'[^A-Za-z0-9.+-]+', '_', label).strip('_')}__{config.run_id}"


def hyperparameters(config: RunConfig, row: dict[str, Any], epochs_done: int, result: RunResult | None
                    ) -> dict[str, Any]:
    """The HParams of one run: ``run_id``, ``label``, the configuration fields that say what was trained
    (unset ones, such as a sphere run's ``lr``, left out; ``augment`` as ``yes``/``no``; ``train_size`` 0 for
    the whole training set), ``status`` (:func:`sphere_regimes.plans.run_row`'s state), ``epochs_done``,
    ``regime`` of a finished run and ``equilibrium_elr`` of a finished SGD run with weight decay."""
    values: dict[str, Any] = {"run_id": config.run_id, "label": row["label"], "status": row["state"],
                              "epochs_done": epochs_done}
    for name in _CONFIG_HPARAMS:
        value = getattr(config, name)
        if isinstance(value, bool):
            value = "yes" if value else "no"
        values[name] = 0 if name == "train_size" and value is None else value
    if config.optimizer == "sphere" and config.constraint == "individual":
        values["grouping"] = config.grouping
    values["regime"] = row["regime"]
    values["equilibrium_elr"] = settled_elr(result)
    return {name: value for name, value in values.items() if value is not None}


def _summary_writer() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ExportError(f"writing TensorBoard files needs the tensorboard package: {INSTALL_HINT}") from None
    return SummaryWriter


def _metrics(config: RunConfig, store: RunStore, result: RunResult | None) -> pd.DataFrame:
    """The run's metric table: the checked one of a finished run, else the rows stored so far."""
    if result is not None:
        return result.metrics
    rows = store.metric_rows(config, config.epochs)
    return pd.DataFrame(rows).set_index("epoch") if rows else pd.DataFrame()


def _write_run(writer_class: type, folder: Path, metrics: pd.DataFrame, hparams: dict[str, Any]) -> None:
    """One run's scalars and HParams session into ``folder`` (event files of an earlier export replaced)."""
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    for old in folder.glob(_EVENT_FILES):
        old.unlink()
    with writer_class(log_dir=str(folder)) as writer:
        for column in metrics.columns:
            for epoch, value in metrics[column].dropna().items():
                writer.add_scalar(column, float(value), global_step=int(epoch))
        _, session_start, session_end = hparams_summaries(hparams, {})
        writer.file_writer.add_summary(session_start)
        writer.file_writer.add_summary(session_end)


def export_tensorboard(store: RunStore, out: Path, run_ids: Iterable[str] | None = None) -> ExportReport:
    """Write every run of ``store`` (or those of ``run_ids``) as TensorBoard event files under ``out``.

    A run whose files cannot be read is left out with its one-line problem in the report; raises
    :class:`ExportError` when the tensorboard package is missing or there is no run to export."""
    writer_class = _summary_writer()
    wanted = None if run_ids is None else set(run_ids)
    entries = [e for e in store.entries() if wanted is None or e[0].name in wanted]
    if not entries:
        where = "" if wanted is None else " among the runs that the preset plans"
        raise ExportError(f"no runs to export in the store {store.root}{where}: give --store DIR or --preset P "
                          "of a store that holds runs (`sphere-regimes ls` lists one)")
    report = ExportReport()
    for entry, config, problem in entries:
        if config is None:
            report.problems.append(problem)
            continue
        row = run_row(config, store)
        if row["state"] == "corrupt":
            report.problems.append(row["error"])
            continue
        try:
            status = store.status(config)
            result = load(config, store)
            metrics = _metrics(config, store, result)
        except StoreError as error:
            report.problems.append(str(error))
            continue
        folder = out / run_folder_name(config, row["label"] if config.init_from else config.label())
        _write_run(writer_class, folder, metrics, hyperparameters(config, row, status.epochs_done if status else 0, result))
        report.written.append(folder)
    return report
