"""The store against a real wire server: the protocol over a socket, racing processes, auth, failures."""
from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import time

import pymongo
import pytest

from hyperdist.errors import StoreError, StoreUnavailable
from hyperdist.store import DONE, ERROR, NEW, RUNNING, Report, Store
from hyperdist.store import testing as raw

OK = {"loss": 0.25, "status": "ok", "extra": {"curve": [1.0, 0.5]}}


def _queued(store: Store, n: int, key: str = "e") -> list:
    store.create_experiment(key, space={"x": 1}, space_hash="h", objective="m:f", algo={"name": "tpe", "params": {}},
                            max_evals=n, seed=1)
    return store.insert_trials(key, [(tid, {"x": float(tid)}) for tid in store.reserve_tids(key, n)])


def test_protocol_over_the_wire(store):
    ids = _queued(store, 3)
    ids += store.insert_trials("e", [(2, {"x": 9.0}), (3, {"x": 3.0})])
    assert ids[3] == ids[2] and ids[4] not in ids[:3]  # the duplicate tid kept its document
    doc = store.claim("w1", 30, "e")
    assert doc["state"] == RUNNING and doc["lease_until"].tzinfo is not None
    assert store.running_trials("e")[0]["lease_until"] == doc["lease_until"]  # built locally == stored
    assert store.heartbeat(doc["_id"], doc["lease_token"], 60) is True
    assert store.report(doc["_id"], "stale", DONE, OK) is False
    assert store.report(doc["_id"], doc["lease_token"], DONE, OK) is True
    other = store.claim("w2", 30)
    assert store.release(other["_id"], other["lease_token"]) is True
    assert store.counts("e") == {NEW: 3, RUNNING: 0, DONE: 1, ERROR: 0}
    [finished] = store.finished_among("e", ids)
    assert finished["result"] == OK and set(finished) == {"_id", "tid", "state", "params", "result", "error", "batch"}
    assert [d["tid"] for d in store.history("e")] == [0, 1, 2, 3]


def test_stale_lease_report_is_refused_after_reaping(store):
    _queued(store, 1)
    first = store.claim("w1", 30, "e")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=31)
    assert len(store.reap_expired("e", max_attempts=3, now=later)) == 1
    second = store.claim("w2", 30, "e")
    assert second["_id"] == first["_id"] and second["attempts"] == 2
    assert store.heartbeat(first["_id"], first["lease_token"], 30) is False
    assert store.report(first["_id"], first["lease_token"], DONE, {"loss": 9.0, "status": "ok"}) is False
    assert store.report(second["_id"], second["lease_token"], DONE, OK) is True
    [trial] = store.history("e")
    assert trial["owner"] == "w2" and trial["result"] == OK


def test_reap_spares_a_lease_renewed_since_it_expired(store):
    _queued(store, 1)
    doc = store.claim("w1", 1, "e")
    assert store.heartbeat(doc["_id"], doc["lease_token"], 60) is True
    assert len(store.reap_expired("e", 3, now=doc["lease_until"] + dt.timedelta(seconds=1))) == 0
    assert store.report(doc["_id"], doc["lease_token"], DONE, OK) is True


def test_a_result_too_large_is_recorded_as_error(store):
    _queued(store, 1)
    doc = store.claim("w", 30, "e")
    huge = {"loss": 1.0, "status": "ok", "blob": "x" * (17 * 1024 * 1024)}
    assert store.report(doc["_id"], doc["lease_token"], DONE, huge) is True
    [trial] = store.history("e")
    assert trial["state"] == ERROR and trial["error"]["type"] == "ResultTooLarge"


def _claimer(url: str, db: str, ready, jobs, out) -> None:
    """Claim every trial of each experiment named on `jobs` until none is left; report the tids won."""
    store = Store(url, db=db)
    ready.put(1)
    while (exp_key := jobs.get(timeout=60)) is not None:
        won = []
        while (doc := store.claim(f"p{mp.current_process().pid}", 30, exp_key)) is not None:
            won.append(doc["tid"])
        out.put(won)
    store.close()


def test_racing_processes_claim_each_trial_exactly_once(store, mongo_url):
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    jobs = [ctx.Queue() for _ in range(4)]
    procs = [ctx.Process(target=_claimer, args=(mongo_url, store.db_name, ready, q, out)) for q in jobs]
    for p in procs:
        p.start()
    try:
        for _ in procs:  # all connected before any claims, so they really race
            ready.get(timeout=60)
        for exp_key, n_trials in (("one", 1), ("fifty", 50)):
            _queued(store, n_trials, exp_key)
            for q in jobs:
                q.put(exp_key)
            won = [out.get(timeout=60) for _ in procs]
            assert sorted(t for w in won for t in w) == list(range(n_trials)), exp_key
            if n_trials == 1:
                assert sum(1 for w in won if w) == 1
            assert store.counts(exp_key) == {NEW: 0, RUNNING: n_trials, DONE: 0, ERROR: 0}
            assert {d["attempts"] for d in store.history(exp_key)} == {1}
    finally:
        for q in jobs:
            q.put(None)
        for p in procs:
            p.join(10)


def _candidates_in_order(store: Store, monkeypatch, order: list) -> None:
    """Make the claim read return these trials (by _id), as if read just before a race; the claim
    tries them from the end."""
    def read(query: dict, ranged: bool = False) -> list[dict]:
        return [raw.trials(store).find_one({"_id": key}) for key in order]
    monkeypatch.setattr(store, "_read_candidates", read)


def test_report_and_claim_finishes_one_trial_and_claims_the_next(store):
    s = store
    _queued(s, 3)
    first = s.claim("w1", 30, "e")
    accepted, (second,) = s.report_and_claim([Report(first["_id"], first["lease_token"], DONE, OK)], "w1", 30, "e")
    assert accepted == [True] and second["_id"] != first["_id"] and second["state"] == RUNNING
    assert s.counts("e") == {NEW: 1, RUNNING: 1, DONE: 1, ERROR: 0}
    # a stale token: the claim still goes through, the report does not
    accepted, (third,) = s.report_and_claim([Report(second["_id"], "stale", DONE, OK)], "w1", 30, "e")
    assert accepted == [False] and s.counts("e") == {NEW: 0, RUNNING: 2, DONE: 1, ERROR: 0}
    # nothing left to claim: the report alone
    assert s.report_and_claim([Report(third["_id"], third["lease_token"], ERROR, {"status": "fail"})], "w1", 30,
                              "e") == ([True], [])
    assert s.report_and_claim([], "w1", 30, "e") == ([], [])


def test_report_and_claim_when_another_worker_took_the_candidate(store, monkeypatch):
    s = store
    ids = _queued(s, 3)
    mine = s.claim("w1", 30, "e")
    taken = s.claim("w2", 30, "e")
    free = next(i for i in ids if i not in (mine["_id"], taken["_id"]))
    _candidates_in_order(s, monkeypatch, [free, taken["_id"]])  # tried from the end: the taken one first
    accepted, (doc,) = s.report_and_claim([Report(mine["_id"], mine["lease_token"], DONE, OK)], "w1", 30, "e")
    assert accepted == [True] and doc["_id"] == free  # one of two updates applied: the report, not the claim
    assert raw.trials(s).find_one({"_id": taken["_id"]})["owner"] == "w2"
    # both lost: a stale report and only taken candidates
    _candidates_in_order(s, monkeypatch, [taken["_id"]])
    assert s.report_and_claim([Report(mine["_id"], "stale", DONE, OK)], "w1", 30, "e") == ([False], [])
    assert s.counts("e") == {NEW: 0, RUNNING: 2, DONE: 1, ERROR: 0}


def test_short_trials_are_claimed_and_reported_several_at_a_time(store):
    s = store
    _queued(s, 10)
    batch = s.report_and_claim([], "w", 30, "e", n=4)[1]
    assert len(batch) == 4 and len({d["lease_token"] for d in batch}) == 1  # one lease for the batch
    assert s.heartbeat([d["_id"] for d in batch], batch[0]["lease_token"], 60) is True
    reports = [Report(d["_id"], d["lease_token"], DONE, OK) for d in batch]
    accepted, again = s.report_and_claim(reports, "w", 30, "e", n=4)
    assert accepted == [True] * 4
    assert len(again) == 3  # at most half of the 6 it saw waiting: the other workers find some too
    assert s.counts("e") == {NEW: 3, RUNNING: 3, DONE: 4, ERROR: 0}
    # a retried hand-in whose first reply was lost: already recorded under our lease, so accepted
    assert s.report_and_claim(reports, "w", 30, "e", n=0) == ([True] * 4, [])
    assert s.counts("e") == {NEW: 3, RUNNING: 3, DONE: 4, ERROR: 0}


def test_a_batch_with_a_stale_report_and_a_lost_pick_is_sorted_out_by_one_read(store, monkeypatch):
    s = store
    ids = _queued(s, 6)
    mine = s.report_and_claim([], "w1", 30, "e", n=2)[1]
    taken = s.claim("w2", 30, "e")
    free = [i for i in ids if i not in {d["_id"] for d in mine} | {taken["_id"]}]
    s.release(mine[1]["_id"], mine[1]["lease_token"])  # as if its lease had expired and been reaped
    _candidates_in_order(s, monkeypatch, [taken["_id"]] + free)
    reports = [Report(d["_id"], d["lease_token"], DONE, OK) for d in mine]
    accepted, won = s.report_and_claim(reports, "w1", 30, "e", n=2)
    assert accepted == [True, False]
    assert [d["_id"] for d in won] == free[:1]  # picked [taken, free[0]]: one of the two was left
    assert raw.trials(s).find_one({"_id": taken["_id"]})["owner"] == "w2"
    assert s.counts("e") == {NEW: 3, RUNNING: 2, DONE: 1, ERROR: 0}


def test_the_reports_of_one_lease_are_one_statement_and_each_trial_keeps_its_own_outcome(store, mongo_url):
    """Several reports under one lease token are written by one pipeline statement (one server
    transaction); each trial still gets its own state, result and error, a stale one is refused,
    and a large result goes alone."""
    listener = _Commands()
    client = pymongo.MongoClient(mongo_url, event_listeners=[listener], tz_aware=True)
    s = Store(mongo_url, db=store.db_name, client=client)
    _queued(store, 12)
    batch = s.report_and_claim([], "w", 30, "e", n=6)[1]
    other = s.claim("w2", 30, "e")
    s.release(batch[4]["_id"], batch[4]["lease_token"])  # as if reaped: its report must be refused
    big = {"loss": 9.0, "status": "ok", "blob": "y" * (1536 * 1024)}
    outcomes = [(DONE, {"loss": 0.5, "status": "ok"}, None), (DONE, {"loss": 0.25, "status": "ok", "extra": [1, 2]}, None),
                (ERROR, {"status": "fail"}, {"type": "ValueError", "message": "bad", "traceback": None}),
                (DONE, big, None), (DONE, OK, None), (DONE, {"loss": 0.75, "status": "ok"}, None)]
    reports = [Report(d["_id"], d["lease_token"], *o) for d, o in zip(batch, outcomes)]
    reports.append(Report(other["_id"], other["lease_token"], DONE, {"loss": 2.0, "status": "ok"}))
    listener.sent.clear()
    accepted, _ = s.report_and_claim(reports, "w", 30, "e", n=0)
    assert accepted == [True, True, True, True, False, True, True]
    update = [shape for name, shape in listener.sent if name == "update"][0]
    assert len(update) == 3  # the five small reports of one lease, the big one, the other lease's
    for r in reports[:4] + reports[5:]:
        doc = raw.trials(s).find_one({"_id": r.trial_id})
        assert (doc["state"], doc["result"], doc["error"]) == (r.state, r.result, r.error)
        assert doc["lease_token"] == r.token and doc["lease_until"] is None and doc["finished"] is not None
    assert raw.trials(s).find_one({"_id": reports[4].trial_id})["state"] == NEW
    client.close()


class _Commands(pymongo.monitoring.CommandListener):
    """Every command a client sends, with the fields its filters name."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple]] = []

    def started(self, event) -> None:
        cmd = event.command
        if event.command_name == "update":
            shape = tuple(tuple(sorted(u["q"])) for u in cmd["updates"])
        else:
            shape = tuple(sorted(cmd.get("filter") or {}))
        self.sent.append((event.command_name, shape))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def test_a_worker_trial_costs_two_commands_through_indexed_shapes(store, mongo_url):
    """Steady state: one read of NEW candidates by (exp_key, state), one update carrying the report
    and the next claim, each filtered by `_id` (shapes measured in docs/store-notes.md: a range or
    an `exp_key` beside `_id` makes SecantusDB scan the collection)."""
    listener = _Commands()
    client = pymongo.MongoClient(mongo_url, event_listeners=[listener], tz_aware=True)
    counted = Store(mongo_url, db=store.db_name, client=client)
    _queued(store, 12)
    doc = counted.claim("w", 30, "e")
    listener.sent.clear()
    for _ in range(10):
        accepted, (doc,) = counted.report_and_claim([Report(doc["_id"], doc["lease_token"], DONE, OK)], "w", 30, "e")
        assert accepted == [True]
    read = ("find", ("exp_key", "state"))
    # the claim also requires a sane attempts count (a residual predicate on the _id lookup)
    report_and_claim = ("update", (("_id", "lease_token", "state"), ("_id", "attempts", "state")))
    assert listener.sent == [read, report_and_claim] * 10
    assert store.counts("e") == {NEW: 1, RUNNING: 1, DONE: 10, ERROR: 0}
    listener.sent.clear()
    store.finished_among("e", [doc["_id"]])
    counted.finished_among("e", [doc["_id"]])
    counted.reap_expired("e", 3)
    assert listener.sent == [("find", ("_id", "state")), ("find", ("exp_key", "state"))]
    client.close()


def test_unreachable_server_fails_in_bounded_time_without_the_password():
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        Store("mongodb://user:secret@127.0.0.1:1/", timeout_ms=300)
    assert time.monotonic() - start < 5
    assert "secret" not in str(err.value) and "127.0.0.1:1" in str(err.value)
    assert err.value.__suppress_context__ and err.value.__cause__ is None  # no pymongo traceback


def test_an_invalid_url_is_one_error_without_the_password():
    with pytest.raises(StoreError, match="invalid MongoDB URL") as err:
        Store("mongodb://user:secret@host:notaport/", timeout_ms=300)
    assert "secret" not in str(err.value)


def test_auth_with_and_without_credentials(local_servers, tmp_path):
    data = tmp_path / "auth"
    open_server = local_servers.start(data)
    admin = pymongo.MongoClient(open_server.url)
    admin.admin.command("createUser", "alice", pwd="s3cret-pw", roles=["root"])
    admin.close()
    local_servers.kill(open_server)  # acknowledged writes survive (--sync-on-commit); faster than a clean stop
    server = local_servers.start(data, auth=True)
    host = server.url.split("//")[1]

    store = Store(f"mongodb://alice:s3cret-pw@{host}/?authSource=admin", db="secure", timeout_ms=2000)
    assert "s3cret-pw" not in store.url_redacted
    _queued(store, 1)
    assert store.claim("w", 30, "e")["tid"] == 0
    store.close()
    for url in (f"mongodb://{host}/", f"mongodb://alice:wrong-pw@{host}/?authSource=admin"):
        with pytest.raises(StoreError) as err:
            Store(url, db="secure", timeout_ms=2000)
        assert not isinstance(err.value, StoreUnavailable)  # a refusal, not an outage: no retrying
        assert "wrong-pw" not in str(err.value)


def test_retryable_writes_are_off_on_the_embedded_server_only(store, mongo_url):
    """The store repeats every protocol step itself; SecantusDB charges each retryable write more
    the more it has served (docs/store-notes.md), so they are off there. A real MongoDB
    (HYPERDIST_TEST_MONGO_URL) keeps the driver's default, and a URL that sets them always wins."""
    real_mongodb = bool(os.environ.get("HYPERDIST_TEST_MONGO_URL"))
    assert raw.client(store).options.retry_writes is real_mongodb
    url = mongo_url + ("&" if "?" in mongo_url else ("/" if not mongo_url.endswith("/") else "") + "?") + "retryWrites=true"
    asked = Store(url, db=store.db_name)
    try:
        assert raw.client(asked).options.retry_writes is True
    finally:
        asked.close()
    # the URL a search hands its own workers says what was found, so they connect once, without asking
    commands = _CommandNames()
    handed = Store(store.worker_url, db=store.db_name, event_listeners=[commands])
    try:
        assert raw.client(handed).options.retry_writes is real_mongodb
        assert "buildInfo" not in commands.names, commands.names
    finally:
        handed.close()


class _CommandNames(pymongo.monitoring.CommandListener):
    """The names of the commands a client sends."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass
