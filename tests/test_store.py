"""The store's protocol steps: unit tests on mongomock, races and leases on the real wire server."""
from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import subprocess
import sys
import time

import pytest

from hyperdist.errors import CoordinatorBusy, ExperimentExists, ExperimentNotFound, StoreError
from hyperdist.store import DONE, ERROR, NEW, RUNNING, Store
from hyperdist.store import testing as raw


def _experiment(store: Store, key: str = "e") -> None:
    store.create_experiment(key, space={"format": "x"}, space_hash="h", objective="m:f", algo={"name": "tpe"},
                            max_evals=10, seed=1)


def _one_trial(store: Store, key: str = "e", tid: int = 0) -> None:
    store.insert_trials(key, [(tid, {"x": 1.0})])


@pytest.fixture(params=["mongomock", "wire"])
def any_store(request):
    return request.getfixturevalue("mongomock_store" if request.param == "mongomock" else "store")


def test_experiment_lifecycle(any_store):
    _experiment(any_store)
    with pytest.raises(ExperimentExists):
        _experiment(any_store)
    assert any_store.get_experiment("e")["max_evals"] == 10
    with pytest.raises(ExperimentNotFound, match="'nope'.*known: e"):
        any_store.get_experiment("nope")
    assert any_store.reserve_tids("e", 3) == [0, 1, 2]
    assert any_store.reserve_tids("e", 2) == [3, 4]


def test_claim_report_counts(any_store):
    _experiment(any_store)
    any_store.insert_trials("e", [(0, {"x": 1.0}), (1, {"x": 2.0})])
    # re-inserting a tid keeps the existing document
    again = any_store.insert_trials("e", [(1, {"x": 9.0})])
    assert len(any_store.history("e")) == 2 and again[0] == any_store.history("e")[1]["_id"]
    doc = any_store.claim("w1", 30, "e")
    assert doc["tid"] in (0, 1) and doc["state"] == RUNNING and doc["attempts"] == 1 and doc["lease_token"]
    assert any_store.report(doc["_id"], "wrong-token", DONE, {"loss": 1.0, "status": "ok"}) is False
    assert any_store.heartbeat(doc["_id"], doc["lease_token"], 30) is True
    assert any_store.report(doc["_id"], doc["lease_token"], DONE, {"loss": 1.0, "status": "ok"}) is True
    assert any_store.report(doc["_id"], doc["lease_token"], DONE, {"loss": 0.0, "status": "ok"}) is False
    assert any_store.counts("e") == {NEW: 1, RUNNING: 0, DONE: 1, ERROR: 0}
    finished = any_store.finished_among("e", [d["_id"] for d in any_store.history("e")])
    assert [d["tid"] for d in finished] == [doc["tid"]] and finished[0]["result"]["loss"] == 1.0


def test_release_and_reap(any_store):
    _experiment(any_store)
    _one_trial(any_store)
    doc = any_store.claim("w1", 30, "e")
    assert any_store.release(doc["_id"], doc["lease_token"]) is True
    doc = any_store.claim("w2", 30, "e")
    assert doc["attempts"] == 2
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60)
    assert len(any_store.reap_expired("e", max_attempts=3, now=later)) == 1
    assert any_store.counts("e")[NEW] == 1
    # the old owner's lease is gone: its report is refused
    assert any_store.report(doc["_id"], doc["lease_token"], DONE, {"loss": 1.0, "status": "ok"}) is False
    doc = any_store.claim("w3", 30, "e")
    assert len(any_store.reap_expired("e", max_attempts=3, now=later)) == 1
    [trial] = any_store.history("e")
    assert trial["state"] == ERROR and "attempt 3 of 3" in str(any_store.finished_among("e", [trial["_id"]])[0]["error"])


def test_coordinator_lease(any_store):
    _experiment(any_store)
    any_store.acquire_coordinator("e", "c1", 30)
    any_store.acquire_coordinator("e", "c1", 30)  # the holder may re-acquire
    with pytest.raises(CoordinatorBusy, match="c1"):
        any_store.acquire_coordinator("e", "c2", 30)
    assert any_store.renew_coordinator("e", "c2", 30) is False
    any_store.acquire_coordinator("e", "c1", -1)  # expire it
    any_store.acquire_coordinator("e", "c2", 30)
    assert any_store.renew_coordinator("e", "c1", 30) is False


def test_unknown_fields_are_ignored(any_store):
    _experiment(any_store)
    any_store.insert_trials("e", [(0, {"x": 1.0})])
    raw.trials(any_store).update_one({"tid": 0}, {"$set": {"surprise": {"a": 1}}})
    raw.experiments(any_store).update_one({"_id": "e"}, {"$set": {"also": 5}})
    doc = any_store.claim("w", 30, "e")
    assert any_store.report(doc["_id"], doc["lease_token"], DONE, {"loss": 1.0, "status": "ok"})
    assert any_store.counts("e")[DONE] == 1


def test_result_too_large_is_recorded_as_error(store):
    _experiment(store)
    _one_trial(store)
    doc = store.claim("w", 30, "e")
    huge = {"loss": 1.0, "status": "ok", "blob": "x" * (17 * 1024 * 1024)}
    assert store.report(doc["_id"], doc["lease_token"], DONE, huge) is True
    [trial] = store.history("e")
    assert trial["state"] == ERROR and trial["error"]["type"] == "ResultTooLarge"


def _race(url: str, db: str, start: float, out: mp.Queue) -> None:
    s = Store(url, db=db)
    while time.time() < start:
        time.sleep(0.001)
    won = []
    while (doc := s.claim(f"p{mp.current_process().pid}", 30, "e")) is not None:
        won.append(doc["tid"])
    out.put(won)


@pytest.mark.parametrize("n_trials", [1, 50])
def test_racing_processes_claim_each_trial_exactly_once(store, mongo_url, n_trials):
    _experiment(store)
    store.insert_trials("e", [(i, {"x": float(i)}) for i in range(n_trials)])
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 2.0
    procs = [ctx.Process(target=_race, args=(mongo_url, store.db_name, start, out)) for _ in range(6)]
    for p in procs:
        p.start()
    won = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    claimed = sorted(t for w in won for t in w)
    assert claimed == list(range(n_trials))
    if n_trials == 1:
        assert sum(1 for w in won if w) == 1


def test_closing_the_store_spares_the_process_pymongos_exit_wait(mongo_url, db_name):
    """pymongo's exit hook joins its monitor threads, which see a closed client only between 0.5 s
    sleeps (every worker and search paid ~0.55 s at exit): a closed Store drops the hook, so at
    exit nobody has waited for them. A fresh interpreter, since this one has clients open; a hook
    registered before pymongo's runs after it (atexit is last in, first out)."""
    code = ("import atexit, sys, threading\n"
            "atexit.register(lambda: print(sorted(t.name for t in threading.enumerate() if t.name.startswith('pymongo'))))\n"
            "from hyperdist.store import Store\n"
            "Store(sys.argv[1], db=sys.argv[2]).close()\n")
    done = subprocess.run([sys.executable, "-c", code, mongo_url, db_name], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "pymongo_kill_cursors_thread" in done.stdout or "pymongo_server_monitor_thread" in done.stdout, done.stdout


def test_unreachable_server_fails_fast_without_leaking_the_password():
    t = time.monotonic()
    with pytest.raises(StoreError) as err:
        Store("mongodb://alice:s3cret@127.0.0.1:1/?authSource=admin", timeout_ms=500)
    assert time.monotonic() - t < 10
    assert "s3cret" not in str(err.value) and "***" in str(err.value)


def test_invalid_url_is_one_clear_error():
    with pytest.raises(StoreError, match="invalid MongoDB URL"):
        Store("mongodb://user:pw@host:notaport/", timeout_ms=500)
