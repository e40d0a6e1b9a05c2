"""Shared fixtures: small real Fashion-MNIST configurations and throw-away result stores."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from sphere_regimes import RunConfig, paths
from sphere_regimes.data import DataNotFoundError, load_raw
from sphere_regimes.store import RunStore


@pytest.fixture(scope="session")
def fashion_mnist():
    """The real Fashion-MNIST arrays (``make data`` installs them)."""
    try:
        return load_raw("fashion_mnist")
    except DataNotFoundError as error:
        pytest.skip(f"Fashion-MNIST missing: {error}")


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "results")


class CommittedRuns:
    """Copies of runs of the committed store ``results/`` (without their .pt files: nothing is trained) in a
    scratch store: ``committed_runs(run_ids)`` returns the scratch store's folder; ``available`` maps every
    committed run id to its config.json text."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = paths.REPO_ROOT / "results"
        self.available = {p.name: (p / "config.json").read_text() for p in sorted(self.source.iterdir())
                          if (p / "config.json").exists()}

    def __call__(self, run_ids: list[str]) -> Path:
        for run_id in run_ids:
            shutil.copytree(self.source / run_id, self.root / run_id, ignore=shutil.ignore_patterns("*.pt"))
        return self.root


@pytest.fixture
def committed_runs(tmp_path) -> CommittedRuns:
    return CommittedRuns(tmp_path / "store")


@pytest.fixture
def tiny_config(fashion_mnist) -> RunConfig:
    """Width-4 ConvNetSI on 512 real Fashion-MNIST images: a few seconds for a few epochs."""
    return RunConfig(dataset="fashion_mnist", train_size=512, width=4, elr=1e-2, epochs=2, batch_size=128,
                     device="cpu")


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


SMOKE = paths.REPO_ROOT / "_work" / "smoke"  # the Makefile's _work/PRESET for the smoke preset


def _make_smoke(target: str) -> None:
    """``make TARGET PRESET=smoke`` in the checkout; its last output lines in the failure message."""
    result = subprocess.run(["make", "--no-print-directory", target, "PRESET=smoke"], cwd=paths.REPO_ROOT,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="session")
def smoke_notebooks() -> Path:
    """The smoke preset's chapters, executed once by papermill for the whole session
    (``make notebooks PRESET=smoke``: trains the smoke runs its store lacks, then executes the stale
    notebooks into _work/smoke/notebooks); the reference comparison and the book both read them."""
    _make_smoke("notebooks")
    return SMOKE / "notebooks"


@pytest.fixture(scope="session")
def smoke_book(smoke_notebooks) -> Path:
    """The smoke book rendered from those executions (``make book PRESET=smoke`` finds them up to date)."""
    _make_smoke("book")
    return SMOKE / "book" / "_build" / "html"


TINY_THREE_REGIMES = """description: "a tiny two-ELR grid of the three-regimes chapter, for tests"
notebooks:
  02_three_regimes:
    train_size: 256
    width: 2
    epochs: {epochs}
    dense_metric_epochs: 3
    sharpness_every: 0
    elrs: [0.01, 1.0]
    seeds: [0]
    bisection_steps: {bisection_steps}
    individual_elrs: []
    pilot_widths: []
    pilot_train_sizes: []
"""


@pytest.fixture
def tiny_preset(tmp_path, monkeypatch, fashion_mnist, request) -> str:
    """A preset "tiny" (ELRs 0.01 and 1.0, 3 epochs of a width-2 net on 256 images) in a scratch
    presets folder, with its own result store, also for subprocesses (environment variables);
    ``request.param`` may change ``bisection_steps`` (default 0) and ``epochs``."""
    presets = tmp_path / "presets"
    presets.mkdir()
    settings = {"bisection_steps": 0, "epochs": 3, **getattr(request, "param", {})}
    (presets / "tiny.yaml").write_text(TINY_THREE_REGIMES.format(**settings))
    monkeypatch.setattr(paths, "PRESETS_DIR", presets)
    monkeypatch.setenv("SPHERE_REGIMES_PRESETS", str(presets))
    monkeypatch.setenv("SPHERE_REGIMES_RESULTS", str(tmp_path / "results"))
    return "tiny"
