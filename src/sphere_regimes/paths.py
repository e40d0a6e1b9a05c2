"""Every filesystem location the project uses, in one place.

Each path is absolute and can be overridden by an environment variable, so that a
notebook, a test or a cluster job never relies on the current working directory.

| name              | default                         | override                  |
|-------------------|---------------------------------|---------------------------|
| ``REPO_ROOT``     | the checkout holding ``src/``   | ``SPHERE_REGIMES_ROOT``   |
| ``DATA_DIR``      | ``REPO_ROOT/data``              | ``SPHERE_REGIMES_DATA``   |
| ``RESULTS_DIR``   | ``REPO_ROOT/results``           | ``SPHERE_REGIMES_RESULTS``|
| ``PRESETS_DIR``   | ``REPO_ROOT/presets``           | ``SPHERE_REGIMES_PRESETS``|
| ``WORK_DIR``      | ``REPO_ROOT/_work`` (git-ignored scratch: builds, demo store) | ``SPHERE_REGIMES_WORK`` |
| ``MAP_STORE_DIR`` | ``~/.cache/sphere-regimes/map`` (the store of ``map``, a user folder) | ``SPHERE_REGIMES_MAP_STORE`` |
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _default_root() -> Path:
    """The checkout root when installed editable (``src/`` layout), else the working directory."""
    candidate = _PACKAGE_DIR.parent.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd().resolve()


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else default


REPO_ROOT: Path = _env_path("SPHERE_REGIMES_ROOT", _default_root())
DATA_DIR: Path = _env_path("SPHERE_REGIMES_DATA", REPO_ROOT / "data")
RESULTS_DIR: Path = _env_path("SPHERE_REGIMES_RESULTS", REPO_ROOT / "results")
PRESETS_DIR: Path = _env_path("SPHERE_REGIMES_PRESETS", REPO_ROOT / "presets")
WORK_DIR: Path = _env_path("SPHERE_REGIMES_WORK", REPO_ROOT / "_work")
MAP_STORE_DIR: Path = _env_path("SPHERE_REGIMES_MAP_STORE", Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                .expanduser() / "sphere-regimes" / "map")

# Where Debian's ``dataset-fashion-mnist`` package puts the gzip'd idx files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
