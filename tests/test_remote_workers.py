"""Workers the search did not start (`--workers 0`, a worker started by hand, maybe on another
machine): whatever happens to them reaches the person running the search as one line, and what the
search was told (--trial-timeout) reaches them. Real search and worker processes, real server."""
from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from hyperdist.errors import HyperdistError
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import TESTS, experiment_exists, search_cmd, wait_until, worker_env

pytestmark = pytest.mark.slow
OBJECTIVES = TESTS / "objectives.py"


class _Search:
    """`hyperdist search ... --workers 0` in the background, its messages in a file."""

    def __init__(self, url: str, db: str, exp: str, tmp: Path, *args: str, objective: str = "quadratic") -> None:
        self.err = tmp / f"search-{exp}.err"
        cmd = search_cmd("--mongo", url, "--db", db, "--exp", exp, "--workers", "0", *args)
        cmd[4] = f"{OBJECTIVES}:{objective}"
        self.proc = subprocess.Popen(cmd, env=worker_env(), cwd=tmp, stdout=subprocess.DEVNULL,
                                     stderr=self.err.open("w"), text=True)
        self.store = Store(url, db=db)
        wait_until(lambda: experiment_exists(self.store, exp) and self.store.counts(exp)["NEW"] > 0, 60,
                   "the search to create its trials")

    def said(self) -> str:
        return self.err.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        wait_until(lambda: text in self.said() or self.proc.poll() is not None, timeout, f"the search to say {text!r}")
        assert text in self.said(), self.said()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.store.close()
        return self.said()


def _worker(url: str, db: str, exp: str, cwd: Path, *args: str, allow: str = str(OBJECTIVES)) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hyperdist", "worker", "--mongo", url, "--db", db, "--exp", exp,
                             "--allow", allow, "--idle-timeout", "20", *args],
                            env=worker_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _hd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hyperdist", *args], env=worker_env(), cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_worker_refusing_the_objective_is_told_by_the_search_and_status(mongo_url, db_name, tmp_path):
    """The worker's own terminal may be on another machine: the refusal is written on the experiment,
    the search prints it once, `status` lists it, and no trial is spent on it."""
    search = _Search(mongo_url, db_name, "refused", tmp_path, "--max-evals", "2")
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        worker = _worker(mongo_url, db_name, "refused", elsewhere, allow="some_other_module")
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 1 and "not allowed on this worker" in out, out
        search.wait_for("refused to run 'refused'")
        line = next(x for x in search.said().splitlines() if "refused to run" in x)
        assert "not allowed on this worker" in line and "some_other_module" in line
        status = _hd("status", "refused", "--mongo", mongo_url, "--db", db_name)
        assert "workers that refused to run it (last 1):" in status.stdout, status.stdout + status.stderr
        assert "not allowed on this worker" in status.stdout
        search.wait_for("no worker has claimed a trial of 'refused' for 10 s (1 refused it: see above); start workers")
        counts = search.store.counts("refused")
        assert counts["ERROR"] == 0 and counts["RUNNING"] == 0 and counts["NEW"] == 2
    finally:
        said = search.stop()
    assert said.count("refused to run 'refused'") == 1, said


def test_a_worker_started_before_the_search_refuses_without_failing_a_trial(mongo_url, db_name, tmp_path):
    """Workers may wait for a coordinator not started yet (a job array before the search): the first
    trial such a worker claims goes back unrun when it may not run the objective."""
    worker = subprocess.Popen([sys.executable, "-m", "hyperdist", "-v", "worker", "--mongo", mongo_url, "--db", db_name,
                               "--exp", "early", "--allow", "some_other_module"], env=worker_env(), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert worker.stdout is not None
    first = worker.stdout.readline()  # waiting: its check before claiming found nothing to refuse
    assert "experiment 'early' does not exist yet; waiting for its coordinator" in first, first
    search = _Search(mongo_url, db_name, "early", tmp_path, "--max-evals", "2")
    try:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 1 and "not allowed on this worker" in out, out
        search.wait_for("refused to run 'early'")
        counts = search.store.counts("early")
        assert counts["ERROR"] == 0 and counts["RUNNING"] == 0 and counts["NEW"] == 2
    finally:
        search.stop()


def test_a_worker_dying_mid_trial_is_told_and_the_start_workers_hint_comes_back(mongo_url, db_name, tmp_path):
    """The dead worker's lease runs out: the search names the trial and the worker, then, with nobody
    left, repeats the command that starts workers (never the false 'no worker has claimed')."""
    search = _Search(mongo_url, db_name, "dies", tmp_path, "--max-evals", "2", objective="exits")
    try:
        # a lease longer than the hint's 10 s: the lease runs out while the trial is still RUNNING, a few
        # seconds before the reaper takes it back, and the search must tell the loss before the hint
        worker = _worker(mongo_url, db_name, "dies", tmp_path, "--lease", "12")
        worker.communicate(timeout=60)
        assert worker.returncode != 0
        owner = f"{__import__('socket').gethostname()}:{worker.pid}"
        search.wait_for(f"worker {owner} stopped heartbeating (its lease expired); handed out again "
                        "(attempt 1 of 3 lost)")
        search.wait_for("(the workers it had are gone); start workers on this machine")
        assert "hyperdist worker --mongo" in search.said().split("the workers it had are gone")[1]
        said = search.said()
        assert "no worker has claimed a trial" not in said
        assert said.index("stopped heartbeating") < said.index("the workers it had are gone"), said
        [tid] = [r.tid for r in search.store.records("dies") if r.attempts]
        trial = search.store.get_trial("dies", tid)
        assert trial.state == "NEW" and trial.lost is not None and trial.lost["owner"] == owner
    finally:
        search.stop()


@contextlib.contextmanager
def _one_trial_by_hand(mongo_url: str, db_name: str, key: str, tmp_path: Path, objective: str,
                       *search_args: str) -> Iterator[tuple[_Search, str]]:
    """A one-trial search of `objective` whose trial a worker started by hand (with no options of
    its own) runs to its exit: yields the search and the worker's output, and stops the search."""
    search = _Search(mongo_url, db_name, key, tmp_path, "--max-evals", "1", *search_args, objective=objective)
    try:
        worker = _worker(mongo_url, db_name, key, tmp_path)
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, out
        yield search, out
    finally:
        search.stop()


def test_the_search_trial_timeout_reaches_a_worker_started_by_hand(mongo_url, db_name, tmp_path):
    with _one_trial_by_hand(mongo_url, db_name, "slowpoke", tmp_path, "hang",
                            "--trial-timeout", "1.5") as (search, out):
        assert "exceeded the per-trial timeout of 1.5 s" in out and "(0 done, 1 errors)" in out, out
        assert search.proc.wait(60) == 1  # every trial failed
        [trial] = search.store.records("slowpoke")
        assert trial.state == "ERROR" and trial.error["type"] == "TrialTimeout"


def test_a_workers_own_trial_timeout_wins_over_the_stored_one(store):
    import objectives
    from hyperdist.distributed.worker import Worker, WorkerConfig
    from hyperdist.space.compiled import compile_space

    space = compile_space(objectives.space)
    store.create_experiment("own", space=space.to_json(), space_hash=space.hash, objective=f"{OBJECTIVES}:hang",
                            algo={}, max_evals=1, seed=0, options={"trial_timeout": 600})
    exp = Worker(store, WorkerConfig(allow=[str(OBJECTIVES)], exp_key="own"))._experiment("own", None)
    assert exp.trial_timeout == 600.0
    assert Worker(store, WorkerConfig(allow=[str(OBJECTIVES)], exp_key="own"))._timeout(exp) == 600.0
    assert Worker(store, WorkerConfig(allow=[str(OBJECTIVES)], exp_key="own", trial_timeout=2))._timeout(exp) == 2


@pytest.mark.parametrize("planted", [-1, 0, 1e12, "3", True, float("nan"), [5]])
def test_a_planted_trial_timeout_is_refused_with_the_value(mongo_url, store, tmp_path, planted):
    import objectives
    from hyperdist.space.compiled import compile_space

    space = compile_space(objectives.space)
    store.create_experiment("planted", space=space.to_json(), space_hash=space.hash,
                            objective=f"{OBJECTIVES}:quadratic", algo={}, max_evals=1, seed=0)
    raw.database(store)["experiments"].update_one({"_id": "planted"}, {"$set": {"options.trial_timeout": planted}})
    store.insert_trials("planted", [(0, {"x": 0.5, "branch": 0})], space.hash)
    worker = _worker(mongo_url, store.db_name, "planted", tmp_path)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 1 and "Traceback" not in out, out
    assert "options.trial_timeout=" in out and "is not a number of seconds in (0, 2592000]" in out, out
    [refusal] = store.get_experiment("planted")["refusals"]
    assert "options.trial_timeout" in refusal["reason"] and refusal["host"] and refusal["worker"]
    assert store.counts("planted")["NEW"] == 1


@pytest.mark.parametrize("command", ["search", "worker"])
def test_a_trial_timeout_beyond_30_days_is_refused_before_anything_runs(mongo_url, store, command):
    args = search_cmd("--max-evals", "1")[4:] if command == "search" else ["--allow", str(OBJECTIVES)]
    run = _hd(command, *args, "--mongo", mongo_url, "--db", store.db_name, "--trial-timeout", "1e9")
    assert run.returncode == 2, run.stderr  # as any other bad option
    assert run.stderr == "error: --trial-timeout=1000000000.0 is not a number of seconds in (0, 2592000] (30 days)\n"
    assert not store.list_experiments()


def test_a_result_too_large_to_store_is_logged_and_counted_as_the_error_stored(mongo_url, db_name, tmp_path):
    with _one_trial_by_hand(mongo_url, db_name, "huge", tmp_path, "huge") as (search, out):
        assert "ERROR: ResultTooLarge: the result takes 20.0 MiB as BSON" in out and " DONE " not in out, out
        assert "(0 done, 1 errors)" in out, out
        [trial] = search.store.records("huge")
        assert trial.state == "ERROR" and trial.error["type"] == "ResultTooLarge"


def test_refusals_are_bounded_and_a_planted_list_is_read_as_text(store):
    import objectives
    from hyperdist.space.compiled import compile_space
    from hyperdist.views.status import render_status

    space = compile_space(objectives.space)
    store.create_experiment("noted", space=space.to_json(), space_hash=space.hash, objective=f"{OBJECTIVES}:quadratic",
                            algo={}, max_evals=1, seed=0)
    for i in range(12):
        store.record_refusal("noted", f"vm:{i}", "vm", f"reason {i} " + "x" * 1000)
    kept = store.get_experiment("noted")["refusals"]
    assert [r["worker"] for r in kept] == [f"vm:{i}" for i in range(2, 12)] and len(kept[0]["reason"]) == 400
    raw.database(store)["experiments"].update_one({"_id": "noted"}, {"$set": {"refusals": [
        "junk", {"worker": {"$gt": 1}, "reason": 7, "at": "yesterday"}, {"worker": "w", "reason": "r" * 5000}]}})
    text, _ = render_status(store, "noted")
    assert "workers that refused to run it (last 2):" in text
    assert "  ? ?: ?" in text and f"  w ?: {'r' * 397}..." in text
    raw.database(store)["experiments"].update_one({"_id": "noted"}, {"$set": {"refusals": "junk"}})
    with pytest.raises(HyperdistError):  # a worker logs it and exits with its own reason all the same
        store.record_refusal("noted", "vm:1", "vm", "reason")
    assert "workers that refused" not in render_status(store, "noted")[0]


def test_status_names_each_worker_once_with_the_trials_it_holds(store):
    """A worker holding a batch of short trials is one line of `status`, not one per trial."""
    import objectives
    from hyperdist.space.compiled import compile_space
    from hyperdist.views.status import render_status

    space = compile_space(objectives.space)
    store.create_experiment("held", space=space.to_json(), space_hash=space.hash, objective=f"{OBJECTIVES}:quadratic",
                            algo={}, max_evals=20, seed=0)
    store.insert_trials("held", [(t, {"x": t / 20, "c": 0}) for t in range(10)], space.hash)
    held = sorted(store.claim("vm:1", 60, "held")["tid"] for _ in range(8))
    other = store.claim("vm:2", -1, "held")["tid"]  # its lease ran out already
    text, _ = render_status(store, "held")
    workers = sorted(line for line in text.splitlines() if line.startswith("  worker "))
    assert workers[0].startswith(f"  worker vm:1: trials {', '.join(map(str, held[:6]))} and 2 more claimed ") \
        and "LEASE EXPIRED" not in workers[0], workers
    assert workers[1].startswith(f"  worker vm:2: trial {other} claimed ") and workers[1].endswith("LEASE EXPIRED")
    assert len(workers) == 2
