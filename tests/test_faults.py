"""Faults inflicted on real processes: workers and the coordinator killed with SIGKILL mid-search."""
from __future__ import annotations

import random
import signal
import subprocess
import time
from typing import Callable

import pytest

import objectives
from hyperdist import tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.errors import StoreUnavailable
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import OBJECTIVE, all_exit_cleanly, experiment_exists, search_cmd, start_worker, wait_until, worker_env

pytestmark = pytest.mark.slow


def _holding(store: Store, exp_key: str, workers: list[subprocess.Popen]) -> list[int]:
    """Indexes of the workers that hold a claimed trial now (a trial's owner is "host:pid")."""
    owners = {d["owner"].rsplit(":", 1)[1] for d in store.running_trials(exp_key)}
    return [i for i, w in enumerate(workers) if str(w.pid) in owners]


def _tick_to_the_end(coord: Coordinator, workers: list[subprocess.Popen], between: Callable[[], None]) -> None:
    """Tick the coordinator until its search ends, calling `between` after each tick; the workers
    are killed afterwards however it ends."""
    try:
        while not coord.tick():
            between()
            time.sleep(0.02)
        coord.store.update_experiment(coord.exp_key, state="done")
    finally:
        for w in workers:
            w.kill()
            w.wait()


@pytest.mark.parametrize("delay, every", [(0.08, 0.7), (0.005, 0.25)], ids=["one-at-a-time", "batched"])
def test_workers_killed_at_random_lose_no_trial(mongo_url, db_name, tmp_path, delay, every):
    """With 5 ms trials each worker holds several claimed trials (a batch) when it is killed."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "kills", compile_space(objectives.space), tpe.suggest, StopRules(300),
                        CoordinatorConfig(seed=5, workers=4, trial_lease_seconds=2.0, poll_interval=0.02),
                        objective=OBJECTIVE)
    coord.start()
    env = worker_env(HYPERDIST_TEST_DELAY=str(delay), HYPERDIST_TEST_LOG=str(tmp_path / "log"))
    workers = [start_worker(mongo_url, db_name, "kills", env, "--lease", "1.5") for _ in range(4)]
    rng = random.Random(0)
    killed = 0
    next_kill = time.monotonic() + every

    def kill_one() -> None:
        nonlocal killed, next_kill
        holding = _holding(store, "kills", workers) if time.monotonic() > next_kill and killed < 12 else []
        if holding:  # a kill that hits a worker still importing would prove nothing
            victim = rng.choice(holding)
            workers[victim].kill()  # SIGKILL: no chance to hand the trial back
            workers[victim].wait()
            workers[victim] = start_worker(mongo_url, db_name, "kills", env, "--lease", "1.5")
            killed += 1
            next_kill = time.monotonic() + every

    _tick_to_the_end(coord, workers, kill_one)
    assert killed >= 5
    history = store.history("kills")
    assert len(history) == 300 and len({d["tid"] for d in history}) == 300
    assert all(d["state"] in ("DONE", "ERROR") for d in history)
    assert any(d["attempts"] > 1 for d in history)  # some trials were reaped and run again
    assert all(d["attempts"] >= 1 for d in history)
    store.close()


def test_a_killed_slot_workers_waiting_trials_are_taken_by_the_others(mongo_url, db_name):
    """Workers numbered by slot leave each other's short trials alone while their owner is active;
    when the owner of slot 1 is killed and not replaced, the others take its waiting trials once
    they have seen them wait (and the reaper hands back the ones it held), so the search ends."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "slots", compile_space(objectives.space), tpe.suggest, StopRules(150),
                        CoordinatorConfig(seed=3, workers=3, trial_lease_seconds=2.0, poll_interval=0.02),
                        objective=OBJECTIVE)
    coord.start()
    env = worker_env(HYPERDIST_TEST_DELAY="0.005")
    workers = [start_worker(mongo_url, db_name, "slots", env, "--lease", "1.5", "--slot", f"{i}/3") for i in range(3)]
    deadline = time.monotonic() + 60

    def kill_slot_1() -> None:
        if workers[1].poll() is None and store.counts("slots")["DONE"] >= 30:
            workers[1].kill()  # SIGKILL: its slot's trials keep coming and nobody owns them
            workers[1].wait()
        assert time.monotonic() < deadline, store.counts("slots")

    _tick_to_the_end(coord, workers, kill_slot_1)
    history = store.history("slots")
    assert workers[1].returncode == -signal.SIGKILL
    assert len(history) == 150 and all(d["state"] == "DONE" for d in history)
    late = [d for d in history if d["tid"] % 3 == 1 and d["tid"] > 60]
    assert late and all(not d["owner"].endswith(f":{workers[1].pid}") for d in late)  # run by the others
    store.close()


def test_a_stopped_worker_hands_back_the_trials_it_claimed_ahead(mongo_url, db_name):
    """SIGTERM while a batch of short trials is held: the unstarted ones go back to the queue."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "held", compile_space(objectives.space), tpe.suggest, StopRules(200),
                        CoordinatorConfig(seed=2, workers=1, queue=150), objective=OBJECTIVE)
    coord.start()
    coord.tick()
    worker = start_worker(mongo_url, db_name, "held", worker_env(HYPERDIST_TEST_DELAY="0.01"))
    try:
        wait_until(lambda: store.counts("held")["DONE"] >= 40, 60, "40 trials done")
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, out
    counts = store.counts("held")
    assert counts["RUNNING"] == 0 and counts["NEW"] + counts["DONE"] == 151, counts
    done = [d for d in raw.trials(store).find({"exp_key": "held", "state": "DONE"}, {"lease_token": 1})]
    assert len({d["lease_token"] for d in done}) < len(done) / 2  # claimed in batches, one lease each
    store.close()


def test_coordinator_killed_then_resumed_keeps_ids_unique_and_count_exact(mongo_url, db_name, tmp_path):
    env = worker_env(HYPERDIST_TEST_DELAY="0.05")
    common = ["--max-evals", "50", "--mongo", mongo_url, "--db", db_name, "--exp", "crash", "--workers", "2",
              "--data-dir", str(tmp_path / "hd")]
    first = subprocess.Popen(search_cmd(*common), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = Store(mongo_url, db=db_name)
    try:
        wait_until(lambda: experiment_exists(store, "crash") and store.counts("crash")["DONE"] >= 10, 60, "10 trials")
        first.kill()  # SIGKILL of the coordinator: no cleanup at all
        first.wait()
    finally:
        first.kill()
    assert store.get_experiment("crash")["state"] == "running"
    # its workers (separate processes) finish what they hold and idle; the same host sees the
    # coordinator's pid is dead, so a new coordinator may take over at once
    second = subprocess.run(search_cmd(*common, "--resume"), env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    history = store.history("crash")
    assert len({d["tid"] for d in history}) == len(history)
    assert sum(d["state"] in ("DONE", "ERROR") for d in history) == 50
    assert all(d["state"] in ("DONE", "ERROR") for d in history)
    store.close()


def test_an_insert_whose_reply_was_lost_is_not_repeated(store, monkeypatch):
    """The server applied the insert but the reply never came (an outage): the retried tick sends
    the same suggestions again and gets the same documents, not a second batch of trials."""
    coord = Coordinator(store, "lost", compile_space(objectives.space), tpe.suggest, StopRules(10),
                        CoordinatorConfig(seed=1, workers=1), objective=OBJECTIVE)
    coord.start()
    insert, sent = store.insert_trials, []

    def reply_lost_once(exp_key, trials, space_hash=None):
        ids = insert(exp_key, trials, space_hash)
        sent.append([tid for tid, _ in trials])
        if len(sent) == 1:
            raise StoreUnavailable("connection reset before the reply")
        return ids

    monkeypatch.setattr(store, "insert_trials", reply_lost_once)
    store.retry(coord.tick, timeout=10)
    assert len(sent) == 2 and sent[0] == sent[1]
    assert store.counts("lost")["NEW"] == len(coord.open) == coord.workers + coord.pacing.waiting()
    assert sorted(coord.open.values()) == sent[0]


def test_database_killed_and_restarted_mid_search(tmp_path, db_name):
    import os
    import signal
    import threading

    from hyperdist.server.embedded import start_server, stop_server

    data = tmp_path / "db"
    server = start_server(data)
    port = int(server.url.rsplit(":", 1)[1])
    store = Store(server.url, db=db_name, timeout_ms=2000)
    coord = Coordinator(store, "outage", compile_space(objectives.space), tpe.suggest, StopRules(60),
                        CoordinatorConfig(seed=3, workers=2, poll_interval=0.02), objective=OBJECTIVE)
    coord.start()
    env = worker_env(HYPERDIST_TEST_DELAY="0.1")
    workers = [start_worker(server.url, db_name, "outage", env, "--lease", "5") for _ in range(2)]
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("progress", coord.run()), daemon=True)
    runner.start()
    try:
        wait_until(lambda: coord.finished >= 15, 60, "15 trials before the outage")
        os.kill(server.pid, signal.SIGKILL)
        time.sleep(5)
        start_server(data, port=port)
        runner.join(120)
        if runner.is_alive():
            for w in workers:
                w.kill()
            logs = "\n".join(w.communicate()[0][-3000:] for w in workers)
            raise AssertionError(f"the coordinator did not finish after the server came back: "
                                 f"{store.counts('outage')}\n{logs}")
        all_exit_cleanly(workers, timeout=120)
    finally:
        for w in workers:
            w.kill()
        stop_server(data)
    assert result["progress"].finished == 60
    check = Store(start_server(data, port=port).url, db=db_name)
    try:
        history = check.history("outage")
    finally:
        check.close()
        stop_server(data)
    assert len(history) == 60 and len({d["tid"] for d in history}) == 60, [
        (d["tid"], d["state"], d.get("attempts"), d.get("owner")) for d in history]
    assert all(d["state"] in ("DONE", "ERROR") for d in history)


@pytest.mark.parametrize("point", ["before_insert", "after_insert", "during_history", "before_snapshot",
                                   "after_snapshot"])
def test_coordinator_dying_at_each_point_then_resumed(mongo_url, db_name, point):
    import subprocess
    import sys

    from harness import TESTS

    # 60: more than three inserts can hold (the first 6, later ones at most the grown queue of 16 + 2
    # running), so the coordinator dying at its 3rd insert always leaves trials unsuggested
    n = 60
    env = worker_env(HYPERDIST_TEST_DELAY="0.02")
    crash = [sys.executable, str(TESTS / "crashing_coordinator.py"), mongo_url, db_name, "dies"]
    workers = [start_worker(mongo_url, db_name, "dies", env) for _ in range(2)]
    try:
        first = subprocess.run([*crash, "after_insert" if point == "during_history" else point, str(n)], env=env,
                               capture_output=True, text=True, timeout=60)
        assert first.returncode == 9, first.stderr
        if point == "during_history":  # a second coordinator dies while loading what the first left
            second = subprocess.run([*crash, point, str(n)], env=env, capture_output=True, text=True, timeout=60)
            assert second.returncode == 9, second.stderr
        store = Store(mongo_url, db=db_name)
        assert len(store.history("dies")) < n
        assert len(store.read_snapshot("dies")) == {"before_snapshot": 1, "after_snapshot": 2}.get(point, 0)
        coord = Coordinator(store, "dies", compile_space(objectives.space), tpe.suggest, StopRules(n),
                            CoordinatorConfig(seed=4, workers=2, snapshot_every=5), objective=OBJECTIVE)
        assert coord.start(resume=True) is True
        assert coord.run().finished == n
    finally:
        for w in workers:
            w.kill()
    history = store.history("dies")
    assert len({d["tid"] for d in history}) == len(history)
    assert sum(d["state"] in ("DONE", "ERROR") for d in history) == n
    assert all(d["state"] in ("DONE", "ERROR") for d in history)
    store.close()
