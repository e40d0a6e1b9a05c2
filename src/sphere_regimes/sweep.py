"""Sweep executors: train many runs of the result store in parallel, here or on a Ray cluster.

:func:`execute` hands a list of runs to an :class:`Executor` and follows them with a
:class:`Progress` display (runs done / total, epochs per second, ETA). Two kinds of executor:

* ``local`` (the default): ``workers`` processes on this machine with ``threads`` torch threads
  each. On a 2-core CPU two single-thread processes train about 1.4x faster (ConvNetSI-8) than one
  two-thread process, hence the default: one single-thread process per available core. The processes
  form a :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``), not a ``multiprocessing.Pool``:
  a Pool replaces a worker that dies (killed by the out-of-memory killer, a crash in native code, an
  error at import) and waits for its run's result for ever, without a word, and a Pool whose workers
  fail at start-up respawns them for ever; the executor reports both as a broken pool, which stops the
  sweep with a one-line :class:`SweepError`. A sweep whose workers have not started any run after
  :data:`STARTUP_SECONDS` stops with one too, and until the first run starts the heartbeat says that it
  is waiting for the workers.
* ``ray``: each run a Ray task that asks for ``threads`` CPUs, or for one GPU when its device is
  ``cuda`` (or ``auto`` and the cluster has GPUs). The result store must be a path every node sees
  (a shared filesystem); a task whose worker dies is retried (``max_retries``) and resumes from the
  run's last checkpoint. Without ``address`` a Ray instance is started on this machine (127.0.0.1).

Every run goes through :func:`sphere_regimes.engine.run`, which skips a finished run, resumes an
unfinished one from its checkpoint and locks it against a second computation. So a sweep stopped
in any way (Ctrl-C, SIGTERM, a killed worker, parent or node) restarts where it stopped, and a
resumed run ends bit-identical to an uninterrupted one with the same thread count.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, NoReturn

import torch
from tqdm import tqdm

from .config import RunConfig
from .data import DataNotFoundError
from .engine import RunFailedError, duration, run, show_progress
from .labels import describe
from .store import RunStore, StoreError

EXECUTORS = ("local", "ray")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
STARTUP_SECONDS = 600.0
"""A local pool none of whose workers has started a run this long after its creation stops the sweep
(a spawned worker imports torch first: seconds, a minute on a busy machine)."""
POLL_SECONDS = 5.0
"""How often the sweep looks at its local workers while it waits for a result."""


class SweepError(RuntimeError):
    """A problem that stops the whole sweep (missing data, a bad store, no Ray, no GPU on the cluster)."""


@dataclass(frozen=True)
class Outcome:
    """How one run of a sweep ended: ``done``, ``diverged``, ``failed`` (the run's own error, recorded
    in the store), or ``fatal`` (an error every run would hit, which stops the sweep)."""

    config: RunConfig
    state: str
    message: str = ""


def available_cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Executor:
    """Where and how wide a sweep runs: ``kind`` ``local`` or ``ray``; ``workers`` parallel runs
    (local processes, or the CPUs of a Ray instance started here) of ``threads`` torch threads each;
    ``address`` of an existing Ray cluster; ``max_retries`` of a Ray task whose worker died."""

    kind: str = "local"
    workers: int = 1
    threads: int = 1
    address: str | None = None
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"unknown executor {self.kind!r}; choose one of {list(EXECUTORS)}")
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if self.address is not None and self.kind != "ray":
            raise ValueError("a cluster address is for the ray executor; add --executor ray")

    def outcomes(self, todo: list[RunConfig], root: Path) -> Iterator[Outcome]:
        """Compute ``todo`` in the store at ``root``, yielding each run's outcome as it ends."""
        if self.kind == "ray":
            return _ray_outcomes(todo, root, self)
        return _local_outcomes(todo, root, self.workers, self.threads)


def execute(todo: list[RunConfig], store: RunStore, executor: Executor) -> list[RunConfig]:
    """Compute ``todo`` with ``executor`` under a :class:`Progress` display; returns the failed runs.

    Raises :class:`SweepError` on an error that every run would hit, and lets ``KeyboardInterrupt``
    through once the workers are stopped (the runs resume when the sweep is started again).
    """
    store.root.mkdir(parents=True, exist_ok=True)
    failed = []
    with Progress(todo, store, live=show_progress()) as progress, \
            contextlib.closing(executor.outcomes(todo, store.root.resolve())) as outcomes:
        for outcome in outcomes:  # closing: the workers stop at once when the sweep does, whatever stops it
            if outcome.state == "fatal":
                raise SweepError(outcome.message)
            progress.finished(outcome)
            if outcome.state == "failed":
                failed.append(outcome.config)
    return failed


def compute_one(config: RunConfig, root: Path, threads: int) -> Outcome:
    """Train ``config`` in the store at ``root`` with ``threads`` torch threads (in a worker)."""
    torch.set_num_threads(threads)
    try:
        result = run(config, RunStore(root), progress=False)
    except RunFailedError as error:
        return Outcome(config, "failed", str(error))
    except (DataNotFoundError, StoreError, ValueError) as error:
        return Outcome(config, "fatal", str(error))
    status = result.status
    if status.status == "diverged":
        return Outcome(config, "diverged", f"diverged at epoch {status.diverged_epoch}: {status.diverged_reason}")
    return Outcome(config, "done")


# -- local ------------------------------------------------------------------------------

def _local_outcomes(todo: list[RunConfig], root: Path, workers: int, threads: int) -> Iterator[Outcome]:
    """One worker: in this process. More: a pool of spawned processes that ignore Ctrl-C; when the sweep
    stops, the parent terminates them, and they terminate themselves when the parent is gone (their runs
    resume from their last checkpoint next time)."""
    if workers == 1 or len(todo) == 1:
        previous = torch.get_num_threads()
        try:
            for config in todo:
                yield compute_one(config, root, threads)
        finally:
            torch.set_num_threads(previous)
        return
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker)
    try:
        futures = {pool.submit(_compute_in_worker, config, root, threads): config for config in todo}
        yield from _pool_outcomes(futures, RunStore(root))
    except BaseException:  # Ctrl-C, a fatal outcome, a broken pool, the consumer giving up: stop the workers now
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_outcomes(futures: dict[Future, RunConfig], store: RunStore) -> Iterator[Outcome]:
    """The outcomes of ``futures`` as they end, looking every :data:`POLL_SECONDS` whether the workers have
    started a run (a run's lock is held, or a run has ended); a broken pool or no start within
    :data:`STARTUP_SECONDS` raise a one-line :class:`SweepError`."""
    start = time.monotonic()
    started = False
    pending = set(futures)
    ended = 0
    while pending:
        done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        for future in done:
            try:
                outcome = future.result()
            except BrokenProcessPool:
                raise SweepError(
                    f"a worker process of the sweep died abruptly with {len(futures) - ended} runs left (killed "
                    "by a signal, e.g. the out-of-memory killer's, or it crashed in native code or at start-up); "
                    "finished runs are kept: start the same command again to resume the others (with fewer "
                    "--workers if memory is short)") from None
            ended += 1
            yield outcome
        started = started or bool(done) or any(store.is_locked(futures[f]) for f in pending)
        waited = time.monotonic() - start
        if not started and waited > STARTUP_SECONDS:
            raise SweepError(f"none of the sweep's worker processes started a run within {duration(waited)}: they "
                             "may be stuck at start-up (importing torch); stop other heavy programs or give fewer "
                             "--workers, then start the same command again")


def _compute_in_worker(config: RunConfig, root: Path, threads: int) -> Outcome:
    """:func:`compute_one` in a pool worker, which ends the process when SIGTERM interrupts the run (the
    engine has marked it ``interrupted``: it resumes next time). Returning would hand the worker back to
    the executor, which catches every exception of a task, SystemExit too, and waits in its queue for the
    next run, for ever once the parent is gone."""
    try:
        return compute_one(config, root, threads)
    except SystemExit as stop:
        _exit_now(stop.code)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Send SIGTERM to every worker of ``pool`` (Python 3.14 has ``terminate_workers``; before, the
    processes are only reachable through the executor's ``_processes``)."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _init_worker() -> None:
    """Leave Ctrl-C to the parent, end the worker on SIGTERM (:func:`_exit_on_terminate`), and send ourselves
    that SIGTERM when the parent is gone (killed outright: its own SIGTERM to the workers never comes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_terminate)
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_terminate_on_parent_exit, name="parent-watch", daemon=True).start()


def _terminate_on_parent_exit() -> None:
    """SIGTERM this worker once its parent has exited (the parent's sentinel, a pipe, becomes readable)."""
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
    os.kill(os.getpid(), signal.SIGTERM)


def _exit_on_terminate(signum: int, frame: FrameType | None) -> None:
    """A worker's SIGTERM: in a run (:func:`compute_one` on the stack), a SystemExit that the engine turns
    into the ``interrupted`` status and :func:`_compute_in_worker` into the end of the process; elsewhere
    (waiting for a run, sending a result) the end at once. Either way the interpreter's exit and its atexit
    hooks are skipped (nothing to save), and later SIGTERMs are ignored: a broken pool's manager thread and
    :func:`_terminate` both send one, and the second used to raise SystemExit in the way out of the first
    (torch._dynamo's atexit hook ``dump_compile_times`` importing tabulate printed the traceback)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _in_run(frame):
        raise SystemExit(128 + signum)
    _exit_now(128 + signum)


def _in_run(frame: FrameType | None) -> bool:
    """Whether ``frame`` (where a signal found the main thread) is inside :func:`compute_one`."""
    while frame is not None:
        if frame.f_code is compute_one.__code__:
            return True
        frame = frame.f_back
    return False


def _exit_now(code: object) -> NoReturn:
    """End the worker process with ``code``, its output flushed first. A worker's tqdm lock is a thread
    lock (:func:`_init_worker`): tqdm's default one is a named semaphore, which this would leak (Python's
    resource tracker warns)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


# -- Ray --------------------------------------------------------------------------------

def ray_address(executor: Executor) -> str | None:
    """The cluster to connect to: ``executor.address``, else ``RAY_ADDRESS``, else ``None`` (start one here)."""
    return executor.address or os.environ.get("RAY_ADDRESS") or None


def is_loopback(address: str | None) -> bool:
    """Whether the Ray cluster at ``address`` (``None``: one started here) lives on 127.0.0.1 only."""
    return address is None or address.removeprefix("ray://").rsplit(":", 1)[0] in LOOPBACK_HOSTS


def import_ray(address: str | None) -> ModuleType:
    """The ``ray`` module set up for the cluster at ``address`` (``None``: a Ray instance started here),
    or a :class:`SweepError` that says how to install Ray.

    Ray reads these settings when it is imported or starts a node, and each can be overridden from the
    environment: usage statistics off (``RAY_USAGE_STATS_ENABLED=0``); for a cluster on 127.0.0.1, Ray's
    "local Ray" mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), in which every Ray process and the driver
    listen on 127.0.0.1 only (otherwise Ray announces the machine's network address even then); for an
    instance started here, workers at the driver's priority (``RAY_worker_niceness=0``; Ray's default of
    +15 starves the runs on a busy machine).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if is_loopback(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address is None:
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        import ray
    except ImportError:
        raise SweepError("the ray executor needs Ray, which is not installed: "
                         "pip install 'sphere-regimes[ray]'") from None
    return ray


def _ray_init(ray: ModuleType, address: str | None, executor: Executor) -> None:
    """Connect to the cluster at ``address``, or start a new Ray instance on 127.0.0.1 with
    ``workers * threads`` CPUs (never one found running: ``address="local"``); a driver of a cluster on
    loopback stays on loopback."""
    import logging

    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        ray.init(address="local", num_cpus=executor.workers * executor.threads, include_dashboard=False,
                 _node_ip_address="127.0.0.1", **common)
        return
    loopback = {"_node_ip_address": "127.0.0.1"} if is_loopback(address) else {}
    try:
        ray.init(address=address, **loopback, **common)
    except ConnectionError as error:
        raise SweepError(f"no Ray cluster at {address}: {str(error).splitlines()[0]} (a cluster with token "
                         "authentication needs RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN here)") from None


def _ray_resources(config: RunConfig, threads: int, cluster_gpus: float) -> dict[str, float]:
    """One GPU (and one CPU) for a run on ``cuda``, or on ``auto`` when the cluster has GPUs; else
    ``threads`` CPUs (Ray then hides the GPUs from the task, so ``auto`` picks the CPU)."""
    wants_cuda = config.device.startswith("cuda")
    if wants_cuda and not cluster_gpus:
        raise SweepError(f"{config.label()} asks for device {config.device!r} but the Ray cluster has no GPU")
    if wants_cuda or (config.device == "auto" and cluster_gpus):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": threads, "num_gpus": 0}


def ray_task(config: RunConfig, root: str, threads: int) -> Outcome:
    """A sweep's Ray task: :func:`compute_one`, after checking that this node sees the store."""
    if not Path(root).is_dir():
        return Outcome(config, "fatal", f"the result store {root} is not visible on Ray node "
                                        f"{os.uname().nodename}: put it on a filesystem every node mounts")
    return compute_one(config, Path(root), threads)


@contextlib.contextmanager
def connected(executor: Executor) -> Iterator[None]:
    """Hold a ray executor's connection (or the Ray instance it starts) across several :func:`execute`
    calls, such as the passes of a boundary search. Nothing to hold for a local executor, nor inside
    an open connection."""
    if executor.kind != "ray":
        yield
        return
    address = ray_address(executor)
    ray = import_ray(address)
    if ray.is_initialized():
        yield
        return
    _ray_init(ray, address, executor)
    try:
        yield
    finally:
        ray.shutdown()


def _ray_outcomes(todo: list[RunConfig], root: Path, executor: Executor) -> Iterator[Outcome]:
    """Runs as Ray tasks, on the connection of an enclosing :func:`connected` or on one of their own."""
    with connected(executor):
        ray = import_ray(ray_address(executor))
        task = ray.remote(max_retries=executor.max_retries, retry_exceptions=False)(ray_task)
        gpus = ray.cluster_resources().get("GPU", 0)
        pending: dict[Any, RunConfig] = {}
        try:
            for config in todo:
                resources = _ray_resources(config, executor.threads, gpus)
                pending[task.options(**resources).remote(config, str(root), executor.threads)] = config
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                config = pending.pop(ready[0])
                try:
                    yield ray.get(ready[0])
                except ray.exceptions.RayError as error:
                    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    yield Outcome(config, "failed", f"Ray task failed: {reason}")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


# -- progress ---------------------------------------------------------------------------

class Progress:
    """Runs done / total, epochs per second and ETA of a sweep, with the epochs read from the store
    (so it works for any executor). On an interactive terminal a status line on stderr is redrawn
    every second; elsewhere (CI logs, pipes) each finished run prints one line with the same figures,
    and a heartbeat line ``... runs done, ...`` comes when the sweep starts and every
    :attr:`HEARTBEAT_SECONDS` while runs are left, so a log never stays silent for more than that while a
    sweep is alive. The line says how many runs are being computed (their lock is held) and, until a first
    run has started, that the sweep is waiting for its workers to start.

    The rate counts the epochs trained since the sweep started; ETA = remaining epochs / rate, where
    a finished, diverged or failed run has no epochs left.
    """

    REFRESH_SECONDS = 1.0
    HEARTBEAT_SECONDS = 60.0

    def __init__(self, todo: list[RunConfig], store: RunStore, live: bool) -> None:
        self.todo = {config.run_id: config for config in todo}
        self.store = store
        self.live = live
        self.ended: set[str] = set()
        self.failed = 0
        self.target = sum(config.epochs for config in todo)
        self.start = time.monotonic()
        self.initial = self._epochs_now()
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, daemon=True)

    def __enter__(self) -> Progress:
        if not self.live:
            print(self._state(), flush=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self.live:
            self._clear()
        verb = "computed" if kind is None else "stopped after"
        failed = f", {self.failed} failed" if self.failed else ""
        print(f"{verb} {len(self.ended)}/{len(self.todo)} runs{failed} in {duration(self._elapsed())}", flush=True)

    def finished(self, outcome: Outcome) -> None:
        """Record and print one run's outcome."""
        with self._lock:
            self.ended.add(outcome.config.run_id)
            self.failed += outcome.state == "failed"
            detail = f"{outcome.state}: {outcome.message}" if outcome.state == "failed" else \
                outcome.message or outcome.state
            line = f"[{len(self.ended)}/{len(self.todo)}] {self._label(outcome.config)}: {detail}"
            if self.live:
                self._clear()
                print(line, flush=True)
                self._draw()
            else:
                print(f"{line} ({self.summary()})", flush=True)

    def _label(self, config: RunConfig) -> str:
        try:
            return describe(config, self.store)
        except StoreError:  # a damaged run: the listing reports it
            return config.label()

    def summary(self) -> str:
        """``12/240 epochs, 1.3 epochs/s, ETA 2m58s``."""
        now = self._epochs_now()
        rate = (now - self.initial) / max(self._elapsed(), 1e-9)
        eta = duration((self.target - now) / rate) if rate > 0 else "?"
        return f"{now}/{self.target} epochs, {rate:.3g} epochs/s, ETA {eta}"

    def _epochs_now(self) -> int:
        return sum(config.epochs if run_id in self.ended else self._epochs_done(config)
                   for run_id, config in self.todo.items())

    def _epochs_done(self, config: RunConfig) -> int:
        try:
            status = self.store.status(config)
        except StoreError:  # a foreign or damaged file: the run itself will report it
            return 0
        return 0 if status is None else min(status.epochs_done, config.epochs)

    def _elapsed(self) -> float:
        return time.monotonic() - self.start

    def _refresh(self) -> None:
        while not self._stop.wait(self.REFRESH_SECONDS if self.live else self.HEARTBEAT_SECONDS):
            with self._lock:
                if len(self.ended) >= len(self.todo):
                    continue
                if self.live:
                    self._draw()
                else:
                    print(self._state(), flush=True)

    def _state(self) -> str:
        """``3/8 runs done (1 failed), 2 running, 12/240 epochs, ...``; before any run has started, ``waiting
        for the workers to start (1m0s)`` instead of ``0 running``."""
        failed = f" ({self.failed} failed)" if self.failed else ""
        running_now = self._running()
        self._started = self._started or bool(self.ended) or running_now > 0
        running = f"{running_now} running" if self._started else \
            f"waiting for the workers to start ({duration(self._elapsed())})"
        return f"{len(self.ended)}/{len(self.todo)} runs done{failed}, {running}, {self.summary()}"

    def _running(self) -> int:
        """Runs of the sweep being computed now (their lock is held), by any process."""
        return sum(self._is_locked(config) for run_id, config in self.todo.items() if run_id not in self.ended)

    def _is_locked(self, config: RunConfig) -> bool:
        try:
            return self.store.is_locked(config)
        except OSError:  # the folder is being created or removed right now
            return False

    def _draw(self) -> None:
        sys.stderr.write(f"\r\033[K{self._state()}")
        sys.stderr.flush()

    @staticmethod
    def _clear() -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
