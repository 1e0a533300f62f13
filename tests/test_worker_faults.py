"""Objectives that misbehave, and workers that must survive them (real worker processes)."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

import objectives
from hyperdist import rand, tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.errors import SpaceMismatch
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from hyperdist import hp
from harness import TESTS, worker_env

pytestmark = pytest.mark.slow


def _run(mongo_url: str, db: str, fn: str, max_evals: int, *worker_args: str, timeout: float = 90):
    """A coordinator here and one worker process; returns (store, worker's exit code, worker output)."""
    store = Store(mongo_url, db=db)
    coord = Coordinator(store, fn, compile_space(objectives.space), rand.suggest, StopRules(max_evals),
                        CoordinatorConfig(seed=1, workers=1, queue=0), objective=f"{TESTS / 'objectives.py'}:{fn}")
    coord.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db", db, "--exp", fn,
         "--allow", str(TESTS / "objectives.py"), "--idle-timeout", "5", *worker_args],
        env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while not coord.tick():
            if worker.poll() is not None:
                break
        if worker.poll() is None:
            coord.store.update_experiment(fn, state="done")
        out, _ = worker.communicate(timeout=timeout)
    finally:
        worker.kill()
    return store, worker.returncode, out


def _errors(store: Store, exp: str) -> list[dict]:
    return [d["error"] for d in store.history(exp) if d["state"] == "ERROR"]


def test_hanging_objective_hits_the_trial_timeout(mongo_url, db_name):
    store, code, out = _run(mongo_url, db_name, "hang", 2, "--trial-timeout", "0.5")
    assert code == 0, out
    errors = _errors(store, "hang")
    assert len(errors) == 2 and all(e["type"] == "TrialTimeout" for e in errors)


def test_objective_killing_its_interpreter_in_subprocess_mode(mongo_url, db_name):
    store, code, out = _run(mongo_url, db_name, "exits", 4, "--subprocess")
    assert code == 0, out
    errors = _errors(store, "exits")
    assert len(errors) == 4 and all(e["type"] == "ObjectiveCrashed" for e in errors)
    messages = " ".join(e["message"] for e in errors)
    assert "exited with code 3" in messages or "killed by signal 9" in messages
    assert store.counts("exits")["RUNNING"] == 0


def test_bad_results_are_failures_with_reasons_and_the_search_goes_on(mongo_url, db_name):
    store, code, out = _run(mongo_url, db_name, "bad_values", 8, "--max-consecutive-failures", "100")
    assert code == 0, out
    history = store.history("bad_values")
    assert len(history) == 8 and all(d["state"] == "ERROR" for d in history)
    kinds = {d["error"]["type"] for d in history}
    assert kinds <= {"InvalidLoss", "InvalidResult", "UnstorableResult"}
    assert "trial" in out and "ERROR" in out  # one log line per trial


def test_worker_stops_after_consecutive_failures(mongo_url, db_name):
    store, code, out = _run(mongo_url, db_name, "raises", 20, "--max-consecutive-failures", "3")
    assert code == 1
    assert "last 3 trials all failed" in out and "always broken" in out
    assert store.counts("raises")["ERROR"] == 3


def test_hand_edited_parameters_are_rejected_by_the_worker(mongo_url, db_name):
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "edited", compile_space(objectives.space), tpe.suggest, StopRules(3),
                        CoordinatorConfig(seed=1, workers=1, queue=0), objective=f"{TESTS / 'objectives.py'}:quadratic")
    coord.start()
    store.insert_trials("edited", [(1000, {"x": 99.0, "branch": 0}), (1001, {"x": "a string", "branch": 0}),
                                   (1002, {"x": 1.0, "branch": 1})])  # out of range, wrong type, missing y
    worker = subprocess.run(
        [sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db", db_name, "--exp", "edited",
         "--allow", str(TESTS / "objectives.py"), "--max-trials", "3", "--idle-timeout", "5"],
        env=worker_env(), capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stderr
    edited = {d["tid"]: d for d in store.history("edited") if d["tid"] >= 1000}
    assert all(d["state"] == "ERROR" and d["error"]["type"] == "InvalidParams" for d in edited.values())
    assert "outside" in edited[1000]["error"]["message"] and "y" in edited[1002]["error"]["message"]


def test_resume_with_a_changed_space_is_refused_unless_allowed(mongo_url, db_name):
    store = Store(mongo_url, db=db_name)
    first = Coordinator(store, "s", compile_space({"x": hp.uniform("x", 0, 1)}), tpe.suggest, StopRules(5))
    first.start()
    first.stop()
    changed = compile_space({"x": hp.uniform("x", 0, 2), "y": hp.uniform("y", 0, 1)})
    with pytest.raises(SpaceMismatch, match=r"added y=uniform.*x: uniform\(low=0, high=1\) -> uniform\(low=0, high=2\)"):
        Coordinator(store, "s", changed, tpe.suggest, StopRules(5)).start(resume=True)
    Coordinator(store, "s", changed, tpe.suggest, StopRules(5)).start(resume=True, allow_space_change=True)
    assert store.get_experiment("s")["space_hash"] == changed.hash


_IDLE_WORKER = """
import logging, sys
from hyperdist.store import Store
from hyperdist.distributed.worker import Worker, WorkerConfig
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
url, db, allow = sys.argv[1:4]
worker = Worker(Store(url, db=db), WorkerConfig(allow=[allow], exp_key="idle", poll_interval=3600, idle_timeout=None))
worker.install_signal_handlers()
claim = worker.store.report_and_claim
def claim_and_say(*args, **kwargs):  # tells the test when the worker found nothing (its pause follows)
    accepted, claimed = claim(*args, **kwargs)
    print("idle" if not claimed else "claimed", flush=True)
    return accepted, claimed
worker.store.report_and_claim = claim_and_say
worker.run()
"""


def test_a_worker_waiting_for_trials_stops_at_once_on_sigterm(mongo_url, db_name):
    """Its pause between empty claims (an hour here) ends on the signal: `hyperdist search` stops
    its idle workers this way when the experiment is done, instead of waiting for them to look."""
    store = Store(mongo_url, db=db_name)
    Coordinator(store, "idle", compile_space(objectives.space), rand.suggest, StopRules(5),
                CoordinatorConfig(workers=1), objective=f"{TESTS / 'objectives.py'}:quadratic").start()  # an experiment with nothing queued
    worker = subprocess.Popen([sys.executable, "-c", _IDLE_WORKER, mongo_url, db_name, str(TESTS / "objectives.py")],
                              env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout.readline().strip() == "idle"
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)  # without the fix it sleeps out its hour
    finally:
        worker.kill()
    assert worker.returncode == 0, out
    assert "exits: stopped by signal (0 done, 0 errors)" in out


def test_a_worker_log_file_is_rotated_past_its_limit_keeping_the_newest_lines(mongo_url, db_name, tmp_path):
    """A worker whose stdout and stderr are a log file (as a search starts them), an objective
    printing 200 000 bytes per trial: past the limit, before its next trial, the file becomes
    worker.log.1 and the newest lines, with the worker's own, go on in worker.log; two files stay."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "chatty", compile_space(objectives.space), rand.suggest, StopRules(4),
                        CoordinatorConfig(seed=1, workers=1, queue=0), objective=f"{TESTS / 'objectives.py'}:chatty")
    coord.start()
    log = tmp_path / "worker.log"
    with open(log, "ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db", db_name, "--exp", "chatty",
             "--allow", str(TESTS / "objectives.py"), "--idle-timeout", "5"],
            env=worker_env(HYPERDIST_WORKER_LOG_LIMIT="150000"), stdout=out, stderr=subprocess.STDOUT)
    try:
        while not coord.tick():
            assert worker.poll() is None, log.read_text()
        coord.store.update_experiment("chatty", state="done")
        assert worker.wait(timeout=90) == 0, log.read_text()
    finally:
        worker.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.log", "worker.log.1"]
    newest, older = log.read_text(), (tmp_path / "worker.log.1").read_text()
    assert "log rotated at" in newest and "the earlier lines are in worker.log.1" in newest
    xs = [d["params"]["x"] for d in store.history("chatty")]
    assert f"last line x={xs[-1]:.6f}" in newest  # the last trial's output, whole
    assert "exits:" in newest  # the worker's own last line
    assert len(older) < 150_000 + 210_000 and len(newest) < 150_000 + 210_000  # the limit and one trial
    store.close()


def test_an_error_without_a_message_is_named_by_its_type(mongo_url, db_name):
    """`assert x` and MemoryError have no message: the log, the exit reason and the summary name the
    type. With 20 trials queued the worker claims several at once, and still stops at exactly
    --max-consecutive-failures."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "asserts", compile_space(objectives.space), rand.suggest, StopRules(40),
                        CoordinatorConfig(seed=1, workers=1, queue=20), objective=f"{TESTS / 'objectives.py'}:asserts")
    coord.start()
    coord.tick()
    worker = subprocess.run(
        [sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db", db_name, "--exp", "asserts",
         "--allow", str(TESTS / "objectives.py"), "--idle-timeout", "5", "--max-consecutive-failures", "4"],
        env=worker_env(), capture_output=True, text=True, timeout=120)
    out = worker.stdout + worker.stderr
    assert worker.returncode == 1, out
    assert "ERROR: AssertionError in " in out
    assert "the last 4 trials all failed (last error: AssertionError); stopping" in out
    assert store.counts("asserts")["ERROR"] == 4
    assert store.top_errors("asserts") == [(4, "AssertionError")]
