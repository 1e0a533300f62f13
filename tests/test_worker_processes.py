"""What an objective leaves behind - its memory after a failure, the processes it starts - ends with
its trial or its worker (real worker processes, a real server)."""
from __future__ import annotations

import contextlib
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import objectives
from harness import TESTS, wait_until, worker_env
from hyperdist import rand
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.objective.evaluation import ChildProcess
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store

pytestmark = pytest.mark.slow
FILE = str(TESTS / "objectives.py")


def _search(store: Store, fn: str, max_evals: int) -> Coordinator:
    coord = Coordinator(store, fn, compile_space(objectives.space), rand.suggest, StopRules(max_evals),
                        CoordinatorConfig(seed=3, workers=1, queue=0), objective=f"{FILE}:{fn}")
    coord.start()
    return coord


def _kill_survivors(pids: list[int]) -> None:
    """A failed test leaves none of the objective's processes running."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _worker(mongo_url: str, db: str, fn: str, *args: str, env: dict | None = None, preexec_fn=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db", db, "--exp", fn,
         "--allow", FILE, "--idle-timeout", "5", *args],
        env=env or worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec_fn)


def _finish(coord: Coordinator, worker: subprocess.Popen, timeout: float = 120) -> str:
    """Tick the coordinator until the search ends or the worker exits; the worker's output."""
    try:
        while not coord.tick():
            if worker.poll() is not None:
                break
        if worker.poll() is None:
            coord.store.update_experiment(coord.exp_key, state="done")
        out, _ = worker.communicate(timeout=timeout)
    finally:
        worker.kill()
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped yet, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_failed_trials_memory_is_freed_before_the_next_trial(mongo_url, db_name):
    """Each trial takes 55% of what the address-space limit leaves: a worker that kept a failed
    trial's exception (and so its frames and their memory) fails every later trial with MemoryError."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    store = Store(mongo_url, db=db_name)
    coord = _search(store, "alloc_raise", 8)
    out = _finish(coord, _worker(mongo_url, db_name, "alloc_raise", preexec_fn=limit))
    history = store.history("alloc_raise")
    kinds = [d["error"]["type"] for d in history if d["state"] == "ERROR"]
    assert len(history) == 8, out
    assert "MemoryError" not in kinds, out
    assert kinds.count("ValueError") >= 2 and any(d["state"] == "DONE" for d in history), out
    failed = [d["tid"] for d in history if d["state"] == "ERROR"]
    assert any(d["state"] == "DONE" and d["tid"] > min(failed) for d in history), out  # a success after a failure
    store.close()


@contextlib.contextmanager
def _logging_pids(mongo_url: str, db: str, tmp_path: Path, fn: str, trials: int,
                  *worker_args: str) -> Iterator[tuple[Store, subprocess.Popen, str, list[int]]]:
    """`trials` trials of `fn`, whose objective logs the pids of the processes it starts, run by one
    worker to the search's end: yields the store, the worker, its output and those pids, and kills
    whatever of them is left afterwards."""
    log = tmp_path / "pids"
    store = Store(mongo_url, db=db)
    coord = _search(store, fn, trials)
    worker = _worker(mongo_url, db, fn, *worker_args, env=worker_env(HYPERDIST_TEST_LOG=str(log)))
    out = _finish(coord, worker)
    pids = _pids(log)
    try:
        yield store, worker, out, pids
    finally:
        _kill_survivors(pids)
        store.close()


def test_a_worker_in_process_ends_what_its_objective_left_running(mongo_url, db_name, tmp_path):
    with _logging_pids(mongo_url, db_name, tmp_path, "starts_processes", 3) as (_, worker, out, pids):
        assert worker.returncode == 0 and len(pids) == 6, out
        wait_until(lambda: not any(map(_alive, pids)), 30, "the objective's programs and forks to end")
        assert "ended 6 process(es) the objective had started" in out, out


def test_a_trial_timeout_in_a_subprocess_ends_the_programs_the_objective_started(mongo_url, db_name, tmp_path):
    with _logging_pids(mongo_url, db_name, tmp_path, "runs_a_program", 2, "--subprocess", "--trial-timeout",
                       "2") as (store, _, out, pids):
        assert [d["error"]["type"] for d in store.history("runs_a_program")] == ["TrialTimeout"] * 2, out
        assert len(pids) == 4, out
        wait_until(lambda: not any(map(_alive, pids)), 30, "the trial's child and its `sleep 301` to end")


def test_a_killed_workers_trial_child_dies_with_it(mongo_url, db_name, tmp_path):
    """kill -9 of a --subprocess worker: its trial child must not run on (and the trial run twice)."""
    log = tmp_path / "pids"
    store = Store(mongo_url, db=db_name)
    coord = _search(store, "runs_a_program", 1)
    coord.tick()
    worker = _worker(mongo_url, db_name, "runs_a_program", "--subprocess", env=worker_env(HYPERDIST_TEST_LOG=str(log)))
    try:
        wait_until(lambda: len(_pids(log)) == 2, 60, "the trial child to start its program")
        child = _pids(log)[1]
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
        wait_until(lambda: not _alive(child), 30, "the trial child to die with its worker")
    finally:
        worker.kill()
        _kill_survivors(_pids(log))
        store.close()


def test_the_trial_childs_result_file_is_private(tmp_path):
    child = ChildProcess(f"{FILE}:constant", compile_space(objectives.space).to_json(),
                         {"x": 1.0, "branch": 0}, allow=[FILE], base=str(tmp_path))
    assert child.proc.wait(60) == 0
    mode = stat.S_IMODE(os.stat(child.out_path).st_mode)
    outcome = child.wait(None)
    assert outcome.ok, outcome.error
    assert mode == 0o600, oct(mode)
