"""A coordinator cut off from its experiment, with real processes: stalled (SIGSTOP) until another
took over, a database frozen longer than the workers' leases, a stop signal while the database is
gone. None of them may cost the run its state or finished work, or the person a clear exit."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest

import objectives
from hyperdist import rand
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import TESTS, search_cmd, start_worker, wait_until, worker_env

pytestmark = pytest.mark.slow


def _lease_ran_out(store: Store, key: str) -> bool:
    holder = store.get_experiment(key).get("coordinator") or {}
    until = holder.get("lease_until")
    return until is None or until < dt.datetime.now(dt.timezone.utc)


def test_a_stalled_coordinator_that_wakes_after_a_takeover_writes_nothing(mongo_url, db_name):
    """A is frozen past its lease, B resumes the experiment, A wakes: A says it was taken over and
    exits 1 without touching the experiment; B ends it done, every trial counted once."""
    key = "stalled"
    args = ["--max-evals", "40", "--workers", "2", "--mongo", mongo_url, "--db", db_name, "--exp", key]
    env = worker_env(HYPERDIST_TEST_DELAY="0.3")
    first = subprocess.Popen(search_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    store = Store(mongo_url, db=db_name)
    try:
        wait_until(lambda: key in store.experiment_keys() and store.counts(key)["DONE"] >= 4, 90, "4 trials")
        first.send_signal(signal.SIGSTOP)
        wait_until(lambda: _lease_ran_out(store, key), 60, "the stalled coordinator's lease to run out")
        second = subprocess.Popen(search_cmd(*args, "--resume"), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        wait_until(lambda: f":{second.pid}:" in str((store.get_experiment(key).get("coordinator") or {}).get("owner")), 90,
                   "the takeover")
        first.send_signal(signal.SIGCONT)
        _, first_err = first.communicate(timeout=120)
        _, second_err = second.communicate(timeout=180)
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert first.returncode == 1, first_err
    assert "another coordinator (" in first_err and f"took over experiment {key!r}" in first_err
    assert "could not mark" not in first_err and "--resume" not in first_err, first_err
    assert second.returncode == 0, second_err
    assert "40 trials: 40 ok" in second_err, second_err
    assert store.get_experiment(key)["state"] == "done"
    history = store.history(key)
    assert len(history) == 40 and len({d["tid"] for d in history}) == 40  # A inserted nothing after B took over
    owners = {d["owner"] for d in raw.database(store)["snapshots"].find({"exp_key": key})}
    assert owners and not any(f":{first.pid}:" in o for o in owners), owners
    store.close()


def test_a_frozen_database_longer_than_the_leases_costs_no_finished_work(local_servers, db_name):
    """The server is frozen (SIGSTOP) for longer than the workers' 6 s lease while two 12-s trials
    run: when it wakes, nobody could renew a lease for a while, so the coordinator gives each one
    another lease before reaping; each trial ran once and its result was taken."""
    server = local_servers.start()
    key = "frozen"
    search = subprocess.Popen(search_cmd("--max-evals", "4", "--workers", "0", "--mongo", server.url, "--db", db_name,
                                         "--exp", key),
                              env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store(server.url, db=db_name)
    env = worker_env(HYPERDIST_TEST_DELAY="12")
    workers = [start_worker(server.url, db_name, key, env, "--lease", "6") for _ in range(2)]
    try:
        wait_until(lambda: key in store.experiment_keys() and store.counts(key)["RUNNING"] == 2, 90, "2 running trials")
        os.kill(server.pid, signal.SIGSTOP)
        time.sleep(10)  # the scenario: a freeze longer than a lease (6 s), shorter than the trials
        os.kill(server.pid, signal.SIGCONT)
        _, err = search.communicate(timeout=180)
        logs = [w.communicate(timeout=120)[0] for w in workers]
    finally:
        os.kill(server.pid, signal.SIGCONT)
        search.kill()
        for w in workers:
            w.kill()
    assert search.returncode == 0, err
    assert not any("result not accepted" in log for log in logs), logs
    history = store.history(key)
    assert [(d["state"], d["attempts"]) for d in history] == [("DONE", 1)] * 4, history
    store.close()


@pytest.mark.parametrize("signum,outage", [(signal.SIGINT, "killed"), (signal.SIGTERM, "frozen")],
                         ids=["SIGINT-server-killed", "SIGTERM-server-frozen"])
def test_a_stop_signal_during_an_outage_is_named_and_the_search_resumes_later(local_servers, db_name, signum, outage):
    """Ctrl-C / SIGTERM while the database is gone (killed) or hangs (frozen): the signal is named,
    cleanup gives up on the database, the exit code is 128 + the signal, and one line says the
    experiment could not be marked stopped and that --resume continues it, which it then does."""
    server = local_servers.start()
    port = int(server.url.rsplit(":", 1)[1])
    key = f"outage-{outage}"
    args = ["--max-evals", "30", "--workers", "2", "--mongo", server.url, "--db", db_name, "--exp", key]
    env = worker_env(HYPERDIST_TEST_DELAY="0.2")
    search = subprocess.Popen(search_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store(server.url, db=db_name)
    try:
        wait_until(lambda: key in store.experiment_keys() and store.counts(key)["DONE"] >= 3, 90, "3 trials")
        store.close()
        if outage == "killed":
            local_servers.kill(server)
        else:
            os.kill(server.pid, signal.SIGSTOP)
        time.sleep(4)  # the search is waiting for the database now
        search.send_signal(signum)
        _, err = search.communicate(timeout=90)
    finally:
        search.kill()
        if outage == "frozen":
            os.kill(server.pid, signal.SIGCONT)
    assert search.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err, err
    assert "the search failed" not in err, err
    told = [line for line in err.splitlines() if line.startswith(f"could not mark {key!r} stopped")]
    assert len(told) == 1 and "--resume" in told[0], err
    assert "or more trials (as last read: " in err and "the database did not answer for an exact count" in err, err
    local_servers.kill(server)
    again = local_servers.start(server.data_dir, port=port)
    resumed = subprocess.run(search_cmd(*args, "--resume"), env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    store = Store(again.url, db=db_name)
    history = store.history(key)
    assert len(history) == 30 and all(d["state"] == "DONE" for d in history)
    assert store.get_experiment(key)["state"] == "done"
    store.close()


@pytest.mark.parametrize("fn,args", [("hang", ["--subprocess"]), ("reports_for_a_minute", [])],
                         ids=["subprocess", "in-process-reporting"])
def test_a_worker_whose_trial_was_handed_out_again_stops_it(mongo_url, db_name, tmp_path, fn, args):
    """The trial a worker runs is reaped (as a coordinator does to a worker it believes dead, here
    on its last attempt, so it ends ERROR). The worker's next heartbeat finds out: a --subprocess
    trial's process is ended, an objective reporting progress is told to stop; either way it is
    not run to its end (a minute) and the reaper's record stands."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, fn, compile_space(objectives.space), rand.suggest, StopRules(1),
                        CoordinatorConfig(seed=1, workers=1, queue=0), objective=f"{TESTS / 'objectives.py'}:{fn}")
    coord.start()
    coord.tick()  # the one trial
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hyperdist", "worker", "--mongo", mongo_url, "--db", db_name, "--exp", fn,
             "--allow", str(TESTS / "objectives.py"), "--lease", "3", *args],
            env=worker_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: store.counts(fn)["RUNNING"] == 1, 60, "the trial to start")
        owner = store.running_trials(fn)[0]["owner"]
        # a heartbeat may land between the two writes: then the lease is taken away again
        wait_until(lambda: store.expire_leases(fn, [owner]) and store.reap_expired(fn, max_attempts=1), 30,
                   "the trial to be reaped")
        # the heartbeat says so, or (an objective that stopped before the next heartbeat) the report's refusal
        wait_until(lambda: any(m in log.read_text() for m in ("its lease was lost while it ran", "result not accepted")),
                   40, "the worker to stop the trial")
    finally:
        worker.terminate()
        worker.wait(30)
    assert worker.returncode == 0, log.read_text()
    [trial] = store.history(fn)
    assert trial["state"] == "ERROR" and trial["error"]["type"] == "LeaseExpired", trial
    store.close()
