"""Crash-safe result store: one folder per run, named by :attr:`RunConfig.run_id`.

Layout of ``ROOT/<run_id>/``:

| file           | content                                                            | in git |
|----------------|--------------------------------------------------------------------|--------|
| ``config.json``  | store format, run id and the full :class:`RunConfig`              | yes    |
| ``metrics.csv``  | one row per epoch (0 = the initial point), see :mod:`.metrics`    | yes    |
| ``status.json``  | ``running`` / ``interrupted`` / ``done`` / ``diverged`` / ``failed``, epochs done, versions | yes |
| ``timing.json``  | wall time, device and thread count (not reproducible by nature)  | yes    |
| ``final.pt``     | the model's weights at the end of a ``done`` run (a fine-tuning start) | only those a later chapter starts from |
| ``resume.pt``    | checkpoint to resume or extend the run                            | no     |
| ``.lock``        | ``flock`` target; the kernel drops the lock when a process dies   | no     |

Every write goes to a temporary file in the same folder, is fsync'ed and renamed over the
target, so a reader sees the old or the new file, never half of one. A process holds the
run's lock while it trains, so two processes asking for the same run compute it once; the
next holder of the lock removes the temporary files a killed process left. A training process
marks the run ``running`` before it changes metrics.csv, and the status that ends the run
(``done``, ``diverged`` or ``failed``) is its last write, so a run that reads as ended has
nothing left in flight and readers without the lock (:meth:`RunStore.read_run`) never mix two
versions of a run. A run stopped by Ctrl-C (or SIGTERM) is marked ``interrupted``; one killed outright
(``kill -9``, a crash) still reads ``running`` with nobody holding its lock, which a listing reports as
interrupted too (stores written before the ``interrupted`` status look like that).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import paths
from ._version import __version__
from .config import STORE_FORMAT, RunConfig

STATUSES = ("running", "interrupted", "done", "diverged", "failed")  # "interrupted": stopped by Ctrl-C or SIGTERM
ENDED = ("done", "diverged")  # statuses that end a run; they record the sha256 of its metrics.csv
_READ_ATTEMPTS = 5
_ALLOWED_ROOT_FILES = {"README.md", ".gitignore", ".gitattributes"}


class StoreError(RuntimeError):
    """Something in the result store is not as this version of the package expects."""


class StoreCorruptError(StoreError):
    """A store file is unreadable, truncated, or belongs to another run or program."""


class StoreFormatError(StoreError):
    """A run was written by an incompatible store format version."""


@dataclass(frozen=True)
class RunStatus:
    status: str
    epochs_done: int
    diverged_epoch: int | None = None
    diverged_reason: str | None = None  # "the loss became NaN or inf", or the SI weights collapsed to norm 0
    error: str | None = None
    package_version: str = ""
    git_sha: str = ""
    torch_version: str = ""
    metrics_sha256: str = ""  # of metrics.csv, recorded when the run ends (done or diverged)
    final_sha256: str = ""  # of final.pt, recorded when the run ends done

    def to_dict(self) -> dict[str, Any]:
        return {"format": STORE_FORMAT, **self.__dict__}


@dataclass(frozen=True)
class RunResult:
    """A finished run as the store holds it: its configuration, status and metric table."""

    config: RunConfig
    status: RunStatus
    metrics: pd.DataFrame  # indexed by epoch, 0 = the initial point

    @property
    def final(self) -> pd.Series:
        """The last epoch's row with every full metric (the last evaluated one)."""
        return self.metrics.dropna(subset=["train_loss"]).iloc[-1]

    def up_to(self, epochs: int) -> RunResult:
        """The run as it stood after ``epochs`` epochs: its metrics up to there, ``done`` unless it had
        diverged by then (a run read at a shorter budget than it was trained for)."""
        if epochs >= self.status.epochs_done:
            return self
        status = dataclasses.replace(self.status, status="done", epochs_done=epochs, diverged_epoch=None,
                                     diverged_reason=None, metrics_sha256="", final_sha256="")
        return RunResult(self.config.replace(epochs=epochs), status, self.metrics[self.metrics.index <= epochs])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically: temp file, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _json_bytes(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """``git rev-parse HEAD`` of the checkout (``+dirty`` with uncommitted changes), or ``""``."""
    try:
        sha = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return sha + ("+dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """The CPU model and a digest of its instruction-set flags (``/proc/cpuinfo``): float results are
    reproducible bit for bit only on the same CPU kind (and thread count); "" where unknown."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = hashlib.sha256(fields.get("flags", "").encode()).hexdigest()[:12]
    return f"{fields.get('model name', 'unknown CPU')} (flags {flags})"


def recompute_advice(run_dir: Path) -> str:
    """What to do about a damaged run folder: restore it from git when the checkout tracks it (a committed
    run: ``git checkout -- results/<id>``), else delete it so that the run is computed again."""
    try:
        tracked = subprocess.run(["git", "-C", str(run_dir.parent), "ls-files", "--", run_dir.name],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        tracked = ""
    if not tracked:
        return f"delete the folder {run_dir} to recompute the run"
    try:
        where = run_dir.resolve().relative_to(paths.REPO_ROOT.resolve())
    except ValueError:
        where = run_dir
    return f"it is committed: restore it with `git checkout -- {where}`"


def package_version() -> str:
    """The package's version (:mod:`._version`, the one source that ``pyproject.toml`` reads too)."""
    return __version__


def _same_file(handle: Any, path: Path) -> bool:
    """Whether the open ``handle`` is still the file at ``path`` (not unlinked or replaced)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _remove_lock_only(directory: Path) -> bool:
    """Remove ``directory`` when it holds only ``.lock`` and temp files (the caller holds the lock)."""
    entries = list(directory.iterdir())
    if any(e.name != ".lock" and not (e.name.startswith(".") and e.name.endswith(".tmp")) for e in entries):
        return False
    for entry in entries:
        entry.unlink()
    directory.rmdir()
    return True


class RunStore:
    """The result store rooted at ``root`` (default :data:`paths.RESULTS_DIR`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else paths.RESULTS_DIR

    # -- locations ------------------------------------------------------------------
    def run_dir(self, config: RunConfig) -> Path:
        return self.root / config.run_id

    def _file(self, config: RunConfig, name: str) -> Path:
        return self.run_dir(config) / name

    # -- locking --------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, config: RunConfig) -> Iterator[None]:
        """Exclusive lock on the run (blocks until free); removes temp files left by a crash."""
        directory = self.run_dir(config)
        while True:
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / ".lock", "a+") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                if not _same_file(handle, directory / ".lock"):
                    continue  # the folder was removed as empty while we waited: lock the new one
                try:
                    for leftover in directory.glob(".*.tmp"):
                        leftover.unlink()
                    yield
                finally:
                    if not (directory / "config.json").exists():
                        _remove_lock_only(directory)
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return

    def remove_stale_locks(self) -> list[Path]:
        """Remove the folders that hold nothing but an unheld ``.lock`` (and temp files): left by a run that
        stopped before it wrote its config (earlier versions left one on every failed start); returns them."""
        removed = []
        for directory in sorted(self.root.glob("*/.lock")):
            directory = directory.parent
            if (directory / "config.json").exists():
                continue
            with open(directory / ".lock", "a+") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a run is starting there
                if not (directory / "config.json").exists() and _remove_lock_only(directory):
                    removed.append(directory)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return removed

    def is_locked(self, config: RunConfig) -> bool:
        """Whether a process holds the run's lock right now (it is being computed)."""
        path = self._file(config, ".lock")
        if not path.exists():
            return False
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False

    # -- reading --------------------------------------------------------------------
    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            value = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StoreCorruptError(f"{path} is not valid JSON ({error}); {recompute_advice(path.parent)}") from None
        if not isinstance(value, dict) or "format" not in value:
            raise StoreCorruptError(f"{path} was not written by sphere_regimes (no 'format' key); "
                                    f"move it out of the result store {self.root}")
        if value["format"] != STORE_FORMAT:
            raise StoreFormatError(f"{path} has store format {value['format']!r}, this version reads format "
                                   f"{STORE_FORMAT}; rerun it (delete {path.parent}) or use the package version "
                                   "that wrote it")
        return value

    def read_config(self, run_dir: Path) -> RunConfig:
        path = run_dir / "config.json"
        value = self._read_json(path)
        try:
            config = RunConfig.from_dict(value["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise StoreCorruptError(f"{path} does not hold a valid run configuration ({error})") from None
        if config.run_id != run_dir.name or value.get("run_id") != run_dir.name:
            raise StoreCorruptError(f"{path} describes run {config.run_id}, not the folder's run {run_dir.name}: "
                                    f"a foreign or moved file; {recompute_advice(run_dir)}")
        return config

    def status(self, config: RunConfig) -> RunStatus | None:
        """The stored status of ``config``'s run, or ``None`` if it was never started."""
        path = self._file(config, "status.json")
        if not path.exists():
            return None
        self.read_config(self.run_dir(config))
        value = self._read_json(path)
        value.pop("format")
        try:
            status = RunStatus(**value)
        except TypeError as error:
            raise StoreCorruptError(f"{path} has unexpected fields ({error})") from None
        if status.status not in STATUSES:
            raise StoreCorruptError(f"{path} has unknown status {status.status!r}")
        return status

    def timing(self, config: RunConfig) -> dict[str, Any]:
        """The run's timing.json (wall seconds, device, threads), empty when none was recorded."""
        path = self._file(config, "timing.json")
        return self._read_json(path) if path.exists() else {}

    def wall_seconds(self, config: RunConfig) -> float:
        """Training wall time up to ``config.epochs`` when the run was stopped there and has been extended
        since (timing.json's ``wall_seconds_at``), else the wall time recorded so far (0 when none was)."""
        timing = self.timing(config)
        return float(timing.get("wall_seconds_at", {}).get(str(config.epochs), timing.get("wall_seconds", 0.0)))

    def read_run(self, config: RunConfig) -> tuple[RunStatus | None, pd.DataFrame | None]:
        """The run's status and, once the run has ended, its metrics up to ``config.epochs``.

        The two are read as one consistent pair, even while another process extends the run: a
        writer marks the run ``running`` before it rewrites metrics.csv, and the status that ends a
        run is its last write and records the file's sha256. So the status is read before and after
        the table; when the two reads agree, the table belongs to that status and must match its
        checksum (else the file is corrupt); when they differ, the run changed and is read again.
        """
        path = self._file(config, "metrics.csv")
        for _ in range(_READ_ATTEMPTS):
            status = self.status(config)
            if status is None or status.status not in ENDED:
                return status, None
            payload = path.read_bytes() if path.exists() else None
            if self.status(config) == status:
                frame = self._ended_metrics(path, payload, status)
                return status, frame[frame.index <= config.epochs]
        raise StoreError(f"run {config.run_id} ({config.label()}) in {self.root} changed {_READ_ATTEMPTS} times "
                         "while being read (another process is computing it); read it again once that is done")

    def _ended_metrics(self, path: Path, payload: bytes | None, status: RunStatus) -> pd.DataFrame:
        if payload is None:
            raise StoreCorruptError(f"{path.parent / 'status.json'} says the run ended ({status.status}) but "
                                    f"{path.name} is missing; {recompute_advice(path.parent)}")
        if status.metrics_sha256 and status.metrics_sha256 != hashlib.sha256(payload).hexdigest():
            raise StoreCorruptError(f"{path} does not match the checksum recorded in status.json when the run "
                                    f"ended; {recompute_advice(path.parent)}")
        return self._parse_metrics(path, payload)

    def metrics_digest(self, config: RunConfig) -> str:
        """sha256 of the stored metrics.csv."""
        return hashlib.sha256(self._file(config, "metrics.csv").read_bytes()).hexdigest()

    def _parse_metrics(self, path: Path, payload: bytes) -> pd.DataFrame:
        """``payload`` (the bytes of ``path``) as a metrics table indexed by consecutive epochs from 0."""
        try:
            frame = pd.read_csv(io.BytesIO(payload), index_col="epoch")
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise StoreCorruptError(f"{path} is not a metrics table ({error}); {recompute_advice(path.parent)}") from None
        if list(frame.index) != list(range(len(frame))):
            raise StoreCorruptError(f"{path} does not hold consecutive epochs from 0; {recompute_advice(path.parent)}")
        return frame

    def metric_rows(self, config: RunConfig, up_to_epoch: int) -> list[dict[str, float]]:
        """Stored rows with epoch <= ``up_to_epoch`` as dicts (for resuming)."""
        path = self._file(config, "metrics.csv")
        if not path.exists():
            return []
        frame = self._parse_metrics(path, path.read_bytes())
        frame = frame[frame.index <= up_to_epoch]
        return [{"epoch": int(epoch), **row} for epoch, row in zip(frame.index, frame.to_dict("records"))]

    # -- writing --------------------------------------------------------------------
    def write_config(self, config: RunConfig) -> None:
        self.run_dir(config).mkdir(parents=True, exist_ok=True)
        value = {"format": STORE_FORMAT, "run_id": config.run_id, "config": config.to_dict()}
        atomic_write_bytes(self._file(config, "config.json"), _json_bytes(value))

    def write_status(self, config: RunConfig, status: RunStatus) -> None:
        atomic_write_bytes(self._file(config, "status.json"), _json_bytes(status.to_dict()))

    def write_timing(self, config: RunConfig, timing: dict[str, Any]) -> None:
        atomic_write_bytes(self._file(config, "timing.json"), _json_bytes({"format": STORE_FORMAT, **timing}))

    def write_metrics(self, config: RunConfig, rows: list[dict[str, float]]) -> None:
        frame = pd.DataFrame(rows).set_index("epoch")
        buffer = io.StringIO()
        frame.to_csv(buffer, float_format="%.9g")
        atomic_write_bytes(self._file(config, "metrics.csv"), buffer.getvalue().encode())

    def save_checkpoint(self, config: RunConfig, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self._file(config, "resume.pt"), buffer.getvalue())

    def save_final(self, config: RunConfig, model_state: dict[str, torch.Tensor]) -> str:
        """Write the final weights of ``config``'s run to final.pt; returns their sha256 (for the status)."""
        buffer = io.BytesIO()
        torch.save({name: tensor.detach().cpu() for name, tensor in model_state.items()}, buffer)
        payload = buffer.getvalue()
        atomic_write_bytes(self._file(config, "final.pt"), payload)
        return hashlib.sha256(payload).hexdigest()

    def load_final(self, config: RunConfig) -> dict[str, torch.Tensor] | None:
        """The final weights of ``config``'s finished run, or ``None`` when the store has none; a file that
        does not match the checksum in status.json raises :class:`StoreCorruptError`."""
        path = self._file(config, "final.pt")
        status = self.status(config)
        if not path.exists() or status is None or not status.final_sha256:
            return None
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != status.final_sha256:
            raise StoreCorruptError(f"{path} does not match the checksum recorded in status.json; delete it (the run's "
                                    "end point is then recomputed when a fine-tuning run needs it)")
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)

    def load_checkpoint(self, config: RunConfig) -> dict[str, Any] | None:
        path = self._file(config, "resume.pt")
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - torch.load raises many types on bad files
            raise StoreCorruptError(f"{path} is not a readable checkpoint ({type(error).__name__}); delete it to "
                                    "recompute the run from the start") from None

    # -- listing --------------------------------------------------------------------
    def other_format_runs(self) -> dict[Path, Any]:
        """Run folders whose config.json was written by another store format, with that format."""
        found = {}
        for path in sorted(self.root.glob("*/config.json")):
            try:
                value = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue  # unreadable: reported as corrupt when the run is read
            if isinstance(value, dict) and value.get("format", STORE_FORMAT) != STORE_FORMAT:
                found[path.parent] = value["format"]
        return found

    def entries(self) -> list[tuple[Path, RunConfig | None, str | None]]:
        """Every entry of the store: ``(folder, config, None)`` for a run, ``(path, None, problem)`` for an
        entry whose config cannot be read or that is no run folder (a one-line problem, never raised)."""
        if not self.root.exists():
            return []
        found: list[tuple[Path, RunConfig | None, str | None]] = []
        for entry in sorted(self.root.iterdir()):
            if entry.name in _ALLOWED_ROOT_FILES or (entry.name.startswith(".") and not entry.is_dir()):
                continue
            if not entry.is_dir() or not (entry / "config.json").exists():
                found.append((entry, None, f"{entry} is not a run folder of sphere_regimes (no config.json); "
                                           f"move it out of the result store {self.root}"))
                continue
            try:
                found.append((entry, self.read_config(entry), None))
            except StoreError as error:
                found.append((entry, None, str(error)))
        return found

    def runs(self) -> list[tuple[RunConfig, RunStatus | None]]:
        """Every run in the store with its status; a foreign entry raises :class:`StoreCorruptError`."""
        if not self.root.exists():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            if entry.name in _ALLOWED_ROOT_FILES or (entry.name.startswith(".") and not entry.is_dir()):
                continue
            if not entry.is_dir() or not (entry / "config.json").exists():
                raise StoreCorruptError(f"{entry} is not a run folder of sphere_regimes; move it out of the "
                                        f"result store {self.root}")
            config = self.read_config(entry)
            found.append((config, self.status(config)))
        return found
