"""Sweep executors end with the store of a plain run, whatever stops them on the way: Ctrl-C on a sweep
of local processes, or SIGKILL of the Ray worker that trains a run on a real Ray cluster (127.0.0.1).

The sweeps run through the command line in subprocesses; the reference is the same preset computed in
this process, one run after the other, with the same thread count (one), so the metrics match bit for bit.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sphere_regimes import plans
from sphere_regimes.cli import main
from sphere_regimes.store import RunStore

LONGER = {"epochs": 12}  # long enough (seconds per run) to stop a sweep in the middle of a run
WAIT_SECONDS = 300  # generous bounds for a loaded machine; a healthy sweep takes seconds


def _checksums(store: RunStore) -> dict[str, tuple[str, str]]:
    """Status and metrics checksum of every run in the store ("started" before its first status)."""
    return {config.run_id: (status.status, status.metrics_sha256) if status else ("started", "")
            for config, status in store.runs()}


def _reference(preset: str, root: Path) -> dict[str, tuple[str, str]]:
    """The preset computed here, one run after the other, one thread."""
    store = RunStore(root)
    assert plans.compute(preset, store) == []
    return _checksums(store)


def _wait_for(condition: Callable[[], object], what: str, process: subprocess.Popen | None = None) -> object:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the sweep ended before {what}: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _mid_run(root: Path) -> Path | None:
    """The folder of a run that is running and has a checkpoint (at least one epoch done)."""
    for status_file in root.glob("*/status.json"):  # written atomically: never half a file
        status = json.loads(status_file.read_text())
        if status["status"] == "running" and status["epochs_done"] >= 1:
            return status_file.parent
    return None


def _sweep_command(preset: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "sphere_regimes.cli", "sweep", preset, *flags]


def _restart(preset: str, env: dict[str, str]) -> None:
    """Start the local sweep of ``preset`` again (two workers), which must end well."""
    restart = subprocess.run(_sweep_command(preset, "--workers", "2"), env=env, text=True, capture_output=True,
                             timeout=WAIT_SECONDS)
    assert restart.returncode == 0, restart.stderr


@pytest.mark.slow
@pytest.mark.parametrize("tiny_preset", [LONGER], indirect=True)
def test_ctrl_c_stops_a_local_sweep_cleanly_and_a_restart_completes_it(tiny_preset, tmp_path):
    expected = _reference(tiny_preset, tmp_path / "reference")
    root = tmp_path / "local"
    env = {**os.environ, "SPHERE_REGIMES_RESULTS": str(root)}
    # A new session stands for the terminal: Ctrl-C sends SIGINT to every process of the foreground group.
    # SIGINT restored to its default for the child: pytest itself may run with SIGINT ignored (started in the
    # background of a non-interactive shell, which sets SIG_IGN), and the child would inherit that.
    sweep_process = subprocess.Popen(_sweep_command(tiny_preset, "--workers", "2"), env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(lambda: _mid_run(root), "a run in the middle", sweep_process)
    os.killpg(sweep_process.pid, signal.SIGINT)
    out, err = sweep_process.communicate(timeout=WAIT_SECONDS)
    assert sweep_process.returncode == 130
    assert "\n" not in err.strip() and "interrupted" in err and "run the same command again" in err
    assert "stopped after" in out
    assert any(status != "done" for status, _ in _checksums(RunStore(root)).values())

    _restart(tiny_preset, env)
    assert _checksums(RunStore(root)) == expected


# -- Ray -----------------------------------------------------------------------------------

def _session_processes(session: int) -> list[psutil.Process]:
    """The processes of the Ray cluster started in session ``session`` (they all inherit it)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.pid != os.getpid():
                found.append(process)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def _ended(process: psutil.Process) -> bool:
    """Whether ``process`` has ended: gone, or a zombie (an orphan's new parent may never reap it)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _alive_in_session(session: int) -> list[psutil.Process]:
    """The processes of session ``session`` that have not ended."""
    return [process for process in _session_processes(session) if not _ended(process)]


def _lock_holder(run_dir: Path, session: int) -> psutil.Process | None:
    """The process of the Ray session that has the run's lock file open (the worker training it)."""
    lock = str(run_dir / ".lock")
    for process in _session_processes(session):
        try:
            if any(f.path == lock for f in process.open_files()):
                return process
        except psutil.Error:
            continue
    return None


@pytest.fixture
def ray_cluster() -> Iterator[tuple[str, int, dict[str, str]]]:
    """A two-CPU Ray cluster on 127.0.0.1 (``ray start --head``): its address, session id, and the
    environment a driver needs (its own authentication token). Teardown kills exactly its processes
    (what `ray stop --force` does, without touching other Ray clusters of the machine)."""
    pytest.importorskip("ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Loopback only (see sweep.import_ray), workers at our priority rather than Ray's +15, and a token
    # of its own (else Ray picks up ~/.ray/auth_token, which a driver given an address does not).
    cluster_env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                   "RAY_worker_niceness": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    # Its files in a folder of its own (short: Ray's socket paths must fit in 107 characters), not in
    # /tmp/ray, where `ray start` would leave the address of a dead cluster for the next ray.init().
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    ray = Path(sys.executable).with_name("ray")
    start = subprocess.Popen([str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                              "--include-dashboard=false", "--disable-usage-stats", "--num-cpus=2",
                              f"--temp-dir={temp_dir}"],
                             env={**os.environ, **cluster_env}, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = start.communicate(timeout=WAIT_SECONDS)[0]
        assert start.returncode == 0, output
        yield f"127.0.0.1:{port}", start.pid, cluster_env
    finally:
        processes = _session_processes(start.pid)
        for process in processes:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(processes, timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _listening_addresses(session: int) -> set[str]:
    addresses = set()
    for process in _session_processes(session):
        try:
            addresses |= {c.laddr.ip for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return addresses


@pytest.mark.parametrize("tiny_preset", [LONGER], indirect=True)
@pytest.mark.ray
def test_ray_sweep_survives_a_killed_worker_and_matches_a_local_run(tiny_preset, tmp_path, ray_cluster):
    address, session, cluster_env = ray_cluster
    expected = _reference(tiny_preset, tmp_path / "reference")
    root = tmp_path / "ray"
    sweep_process = subprocess.Popen(_sweep_command(tiny_preset, "--executor", "ray", "--address", address),
                                     env={**os.environ, **cluster_env, "SPHERE_REGIMES_RESULTS": str(root)},
                                     text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def worker_mid_run() -> psutil.Process | None:
            run_dir = _mid_run(root)
            return _lock_holder(run_dir, session) if run_dir is not None else None

        worker = _wait_for(worker_mid_run, "a Ray worker in the middle of a run", sweep_process)
        assert _listening_addresses(session) <= {"127.0.0.1", "::ffff:127.0.0.1"}
        worker.send_signal(signal.SIGKILL)
        out, err = sweep_process.communicate(timeout=WAIT_SECONDS)
    finally:
        if sweep_process.poll() is None:
            sweep_process.kill()
    assert sweep_process.returncode == 0, err
    assert not worker.is_running()
    finished = [line for line in out.splitlines() if line.startswith("[")]  # Ray adds its own lines on the kill
    assert len(finished) == 2 and all(line.split(": ")[1].startswith("done") for line in finished)
    assert _checksums(RunStore(root)) == expected  # the killed run was retried, resumed and completed


def test_without_ray_the_ray_executor_is_a_one_line_error(tiny_preset, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    for name in ("RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_worker_niceness"):
        monkeypatch.delenv(name, raising=False)  # undone after the test, with what import_ray sets
    assert main(["sweep", tiny_preset, "--executor", "ray"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "pip install 'sphere-regimes[ray]'" in error


# -- local pool: a worker that dies, workers that never start ------------------------------------

def _spawned_pool(workers: int = 1):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _outcomes_of(pool, jobs: dict, store: RunStore) -> None:
    """What the local executor does with ``jobs`` (callable and argument per run): consume the outcomes,
    and on any error terminate the workers and shut the pool down (this must return, never hang)."""
    from sphere_regimes import sweep as sweep_module
    futures = {pool.submit(job, argument): config for config, (job, argument) in jobs.items()}
    try:
        list(sweep_module._pool_outcomes(futures, store))
    finally:
        sweep_module._terminate(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def test_a_worker_that_dies_stops_the_sweep_with_one_line_instead_of_a_hang(tiny_config, store, monkeypatch):
    from sphere_regimes import sweep as sweep_module
    monkeypatch.setattr(sweep_module, "POLL_SECONDS", 0.1)
    other = tiny_config.replace(seed=1)
    with pytest.raises(sweep_module.SweepError) as stop:  # os._exit: the worker vanishes as under SIGKILL
        _outcomes_of(_spawned_pool(2), {tiny_config: (os._exit, 9), other: (time.sleep, 60)}, store)
    assert "a worker process of the sweep died abruptly" in str(stop.value) and "\n" not in str(stop.value)
    assert "start the same command again" in str(stop.value)


def test_workers_that_start_no_run_stop_the_sweep_after_the_start_up_timeout(tiny_config, store, monkeypatch):
    from sphere_regimes import sweep as sweep_module
    monkeypatch.setattr(sweep_module, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(sweep_module, "STARTUP_SECONDS", 0.5)
    start = time.monotonic()
    with pytest.raises(sweep_module.SweepError, match="none of the sweep's worker processes started a run"):
        _outcomes_of(_spawned_pool(), {tiny_config: (time.sleep, 60)}, store)  # no run lock is ever taken
    assert time.monotonic() - start < 60  # terminated, not waited for


@pytest.mark.slow
@pytest.mark.parametrize("tiny_preset", [LONGER], indirect=True)
def test_a_sweep_whose_worker_is_killed_mid_run_says_so_in_one_line_and_resumes(tiny_preset, tmp_path):
    root = tmp_path / "local"
    env = {**os.environ, "SPHERE_REGIMES_RESULTS": str(root)}
    sweep_process = subprocess.Popen(_sweep_command(tiny_preset, "--workers", "2"), env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        def worker_mid_run() -> psutil.Process | None:
            run_dir = _mid_run(root)
            return _lock_holder(run_dir, sweep_process.pid) if run_dir is not None else None

        worker = _wait_for(worker_mid_run, "a worker in the middle of a run", sweep_process)
        worker.send_signal(signal.SIGKILL)  # as the out-of-memory killer would
        out, err = sweep_process.communicate(timeout=WAIT_SECONDS)
    finally:
        if sweep_process.poll() is None:
            sweep_process.kill()
    assert sweep_process.returncode == 2, (out, err)
    # The whole of stderr: the other worker, terminated by the broken pool and by the sweep, prints nothing
    # (a second SIGTERM used to break into its atexit hooks: torch._dynamo's printed a traceback), and the
    # killed one leaked no semaphore the resource tracker would warn about (a worker's tqdm lock is a
    # thread lock).
    assert len(err.splitlines()) == 1 and "a worker process of the sweep died abruptly" in err
    assert "waiting for the workers to start" in out.splitlines()[1]  # the heartbeat's first line
    # No process left behind: under load the resource tracker or the other worker may take a moment to
    # end after the parent (both see it go: the tracker's pipe closes, the worker's parent watch fires).
    _wait_for(lambda: not _alive_in_session(sweep_process.pid), "every process of the sweep to end")
    _restart(tiny_preset, env)
    assert all(status == "done" for status, _ in _checksums(RunStore(root)).values())


def test_a_terminated_worker_ends_at_once_without_its_exit_hooks(capfd):
    # A worker waiting for a run gets SIGTERM twice when a pool breaks (the pool's manager thread and
    # sweep._terminate); the second used to raise SystemExit in the interpreter's exit from the first, in an
    # atexit hook (torch._dynamo's dump_compile_times importing tabulate), which printed a traceback. This
    # hook stands for a slow one: it would outlast the test.
    import atexit
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from sphere_regimes import sweep as sweep_module
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=sweep_module._init_worker)
    worker = psutil.Process(pool.submit(os.getpid).result())
    try:
        pool.submit(atexit.register, time.sleep, 2 * WAIT_SECONDS).result()
        worker.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGTERM)
        _wait_for(lambda: _ended(worker), "the terminated worker to end")
    finally:
        if not _ended(worker):
            worker.kill()
        pool.shutdown(wait=True)
    assert capfd.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("tiny_preset", [LONGER], indirect=True)
@pytest.mark.parametrize("stop", ["SIGTERM to the group", "SIGKILL to the parent"])
def test_a_background_sweep_stopped_mid_run_leaves_no_worker_and_resumes(tiny_preset, tmp_path, stop):
    # A sweep in the background (`setsid nohup make runs &`) ignores Ctrl-C: it is stopped with
    # `kill -TERM -PGID`: the parent stops its workers as on Ctrl-C and says so in one line; SIGKILL of the
    # parent alone gives it no word. Its workers used to mark their runs interrupted and then wait in the
    # pool's queue for ever.
    root = tmp_path / "local"
    env = {**os.environ, "SPHERE_REGIMES_RESULTS": str(root)}
    sweep_process = subprocess.Popen(_sweep_command(tiny_preset, "--workers", "2"), env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        run_dir = _wait_for(lambda: _mid_run(root), "a run in the middle", sweep_process)
        if stop == "SIGTERM to the group":
            os.killpg(sweep_process.pid, signal.SIGTERM)
        else:
            sweep_process.kill()
        _, err = sweep_process.communicate(timeout=WAIT_SECONDS)  # until the workers, which share its pipes, end
        _wait_for(lambda: not _alive_in_session(sweep_process.pid), "every process of the sweep to end")
    finally:
        for process in _alive_in_session(sweep_process.pid):
            process.kill()
    assert "Traceback" not in err, err
    if stop == "SIGTERM to the group":
        assert sweep_process.returncode == 143 and "sphere-regimes: interrupted" in err, err
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    _restart(tiny_preset, env)
    assert all(status == "done" for status, _ in _checksums(RunStore(root)).values())
