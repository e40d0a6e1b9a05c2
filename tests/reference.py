"""An independent reading of the committed store for the claims tests: pandas, json and yaml only, no
sphere_regimes analysis code, so that a claim's test recomputes its value another way than the ledger.

The regime rule is written here again from its description (``sphere_regimes.regimes`` module
docstring), not imported: if the package's rule drifts from its description, the claims tests fail.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

STORE = Path(__file__).resolve().parents[1] / "results"
GRID_EPOCHS = 150  # the three-regimes chapter reads this many epochs of its runs (the budget study extends some)
CHANCE_MARGIN = 0.1  # regime 3: train error within this of chance
MOVING_ANGLE_DEG = 3.0  # regime 2: median angle per epoch over the last quarter at least this
CONVERGED_LOSS = 1e-3  # ... while the last train loss is at least this
LATE_FRACTION = 0.25  # ... the angle window: the last quarter of the epochs
STATISTIC = "median"  # ... its statistic


@cache
def runs(root: Path = STORE) -> pd.DataFrame:
    """One row per run folder: ``run_id``, every field of its config and its ``status``."""
    rows = []
    for folder in sorted(p for p in Path(root).iterdir() if (p / "config.json").is_file()):
        config = json.loads((folder / "config.json").read_text())["config"]
        status = json.loads((folder / "status.json").read_text())["status"]
        rows.append({"run_id": folder.name, **config, "status": status})
    return pd.DataFrame(rows)


def metrics(run_id: str, root: Path = STORE) -> pd.DataFrame:
    """The run's ``metrics.csv`` indexed by epoch (0: the initial point)."""
    return pd.read_csv(Path(root) / run_id / "metrics.csv", index_col="epoch")


def grid_metrics(run_id: str, root: Path = STORE) -> pd.DataFrame:
    """The first :data:`GRID_EPOCHS` epochs of a run of the three-regimes grid."""
    return metrics(run_id, root).loc[:GRID_EPOCHS]


def second_half(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with the full metrics from half the last evaluated epoch on (at least the last 3)."""
    full = frame[frame["train_loss"].notna() & (frame.index > 0)]
    late = full[full.index >= full.index[-1] / 2]
    return late if len(late) >= 3 else full.iloc[-3:]


def regime(frame: pd.DataFrame, num_classes: int = 10, status: str = "done", *, angle: float = MOVING_ANGLE_DEG,
           margin: float = CHANCE_MARGIN, fraction: float = LATE_FRACTION, statistic: str = STATISTIC) -> int:
    """The regime rule from its description: 3 at chance (within ``margin``) train error over the second half,
    2 while the weights keep turning (``statistic`` of the angle per epoch over the last ``fraction`` of the
    epochs at least ``angle``) above a non-zero loss, else 1."""
    if status == "diverged":
        return 3
    late = second_half(frame)
    if late["train_error"].mean() >= 1 - 1 / num_classes - margin:
        return 3
    angles = frame["angle_epoch_deg"].dropna()
    window = angles[angles.index >= angles.index[-1] * (1 - fraction)]
    moving = (window.median() if statistic == "median" else window.mean()) >= angle
    return 2 if late["train_loss"].iloc[-1] >= CONVERGED_LOSS and moving else 1


def majority(labels) -> int:
    """The most frequent label (ties: the higher one)."""
    counts = pd.Series(list(labels)).value_counts()
    return int(max(counts.index[counts == counts.max()]))


def drops_last_batch(table: pd.DataFrame) -> pd.Series:
    """Per run of :func:`runs`, whether it trained on whole batches only (``drop_last_batch``, absent before it existed)."""
    if "drop_last_batch" not in table:
        return pd.Series(False, index=table.index)
    return table["drop_last_batch"].astype("boolean").fillna(False).astype(bool)


def _chapter_parameters(preset: str, chapter: str) -> dict:
    path = STORE.parent / "presets" / f"{preset}.yaml"
    return yaml.safe_load(path.read_text())["notebooks"].get(chapter) or {}


def sphere_preset(chapter: str) -> str:
    """The preset whose three-regimes grid ``chapter`` of the ``cpu`` preset reads: its ``sphere_preset``
    (a chapter that the second edition does not recompute keeps the first edition's), else ``cpu``."""
    return _chapter_parameters("cpu", chapter).get("sphere_preset") or "cpu"


def sphere_grid(root: Path = STORE, preset: str = "cpu") -> pd.DataFrame:
    """The three-regimes chapter's total-constraint runs of ``preset`` (150 epochs on the sphere, width 8,
    10k images, float32 passes, no init_from, whole batches or not as the preset says), with each run's
    regime."""
    drop_last = bool(_chapter_parameters(preset, "02_three_regimes").get("drop_last_batch", False))
    table = runs(root)
    float32 = table["compute_dtype"].fillna("float32") == "float32" if "compute_dtype" in table else True
    grid = table[float32 & (drops_last_batch(table) == drop_last) & (table["optimizer"] == "sphere")
                 & (table["constraint"] == "total") & (table["epochs"] >= GRID_EPOCHS) & (table["width"] == 8)
                 & (table["train_size"] == 10000) & table["init_from"].isna()].copy()
    grid["regime"] = [regime(grid_metrics(r.run_id, root), status=r.status) for r in grid.itertuples()]
    return grid.sort_values(["elr", "seed"]).reset_index(drop=True)


def sphere_map(root: Path = STORE, preset: str = "cpu") -> pd.Series:
    """The majority regime at each ELR of :func:`sphere_grid`."""
    return sphere_grid(root, preset).groupby("elr")["regime"].agg(majority)


def nearest_regime(regime_map: pd.Series, elr: float) -> int:
    """The regime of the map's ELR nearest to ``elr`` in log ELR."""
    return int(regime_map.iloc[int(np.argmin(np.abs(np.log(regime_map.index.to_numpy(float)) - np.log(elr))))])
