"""Store logic on mongomock: every protocol step, its conditions and the documents it leaves."""
from __future__ import annotations

import datetime as dt

import mongomock
import pytest

from hyperdist.errors import CoordinatorBusy, ExperimentExists, ExperimentNotFound, StoreError, StoreUnavailable
from hyperdist.store import DONE, ERROR, FINISHED, NEW, RUNNING, Report, Store
from hyperdist.store import testing as raw
from hyperdist.store import picks

UTC = dt.timezone.utc
OK = {"loss": 0.5, "status": "ok"}


def _now() -> dt.datetime:
    """Now, down to the millisecond BSON keeps."""
    now = dt.datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _experiment(store: Store, key: str = "e", **kwargs) -> dict:
    fields = dict(space={"x": {"dist": "uniform", "low": 0, "high": 1}}, space_hash="h1", objective="m:f",
                  algo={"name": "tpe", "params": {}}, max_evals=10, seed=7)
    return store.create_experiment(key, **{**fields, **kwargs})


def _queued(store: Store, n: int = 1, key: str = "e") -> list:
    _experiment(store, key)
    return store.insert_trials(key, [(tid, {"x": tid / 10}) for tid in store.reserve_tids(key, n)])


def test_experiment_create_get_list_update_delete(mongomock_store):
    s = mongomock_store
    created = _experiment(s, options={"workers": 2})
    got = s.get_experiment("e")
    assert got["state"] == "running" and got["next_tid"] == 0 and got["coordinator"] is None
    assert got["options"] == {"workers": 2} and got["algo"] == {"name": "tpe", "params": {}}
    assert got["created"] == created["created"] and got["created"].tzinfo is not None
    with pytest.raises(ExperimentExists, match="'e'"):
        _experiment(s)
    _experiment(s, "f")
    assert [e["_id"] for e in s.list_experiments()] == ["e", "f"]
    s.update_experiment("e", state="done")
    after = s.get_experiment("e")
    assert after["state"] == "done" and after["updated"] >= got["updated"]
    s.insert_trials("e", [(0, {"x": 1})])
    s.delete_experiment("e")
    assert [e["_id"] for e in s.list_experiments()] == ["f"] and s.history("e") == []


def test_unknown_key_names_it_and_lists_at_most_ten_known(mongomock_store):
    with pytest.raises(ExperimentNotFound, match=r"'nope'.*known: none"):
        mongomock_store.get_experiment("nope")
    for i in range(12):
        _experiment(mongomock_store, f"exp{i:02d}")
    with pytest.raises(ExperimentNotFound) as err:
        mongomock_store.get_experiment("nope")
    listed = str(err.value).split("known: ")[1]
    assert "exp00" in listed and len(listed.split(", and more")[0].split(", ")) == 10
    assert listed.endswith(", and more: `hyperdist list` shows them all)")


def test_reserved_tids_never_repeat(mongomock_store):
    _experiment(mongomock_store)
    blocks = [mongomock_store.reserve_tids("e", n) for n in (3, 1, 32, 5)]
    tids = [t for block in blocks for t in block]
    assert tids == list(range(41)) and mongomock_store.reserve_tids("e", 0) == []
    with pytest.raises(ExperimentNotFound):
        mongomock_store.reserve_tids("missing", 2)


def test_reinserting_a_tid_keeps_the_existing_document(mongomock_store):
    first = _queued(mongomock_store, 2)
    again = mongomock_store.insert_trials("e", [(1, {"x": 9.0}), (2, {"x": 0.2}), (0, {"x": 9.0})])
    assert again[0] == first[1] and again[2] == first[0] and again[1] not in first
    history = mongomock_store.history("e")
    assert [d["tid"] for d in history] == [0, 1, 2] and history[1]["params"] == {"x": 0.1}
    assert all(d["state"] == NEW and d["attempts"] == 0 and d["result"] is None for d in history)


def test_trials_stored_with_object_ids_are_still_read_by_tid(mongomock_store):
    """Trials written before a trial's `_id` was its `exp_key:tid` (ObjectIds, found through an
    (exp_key, tid) index) are still read: every read by tid goes by state through the claim index."""
    from bson import ObjectId

    from hyperdist.store.document import new_trial

    s = mongomock_store
    _experiment(s)
    old = [new_trial(ObjectId(), "e", tid, {"x": tid / 10}, "h1", _now()) for tid in range(4)]
    raw.trials(s).insert_many(old)
    raw.trials(s).update_one({"tid": 1}, {"$set": {"state": DONE, "result": OK}})
    new = s.insert_trials("e", [(4, {"x": 0.4})])
    assert new == ["e:4"] and s.get_trial("e", 2).params == {"x": 0.2} and s.get_trial("e", 4).state == NEW
    assert sorted(d["tid"] for d in s.trials_since("e", 1, [], {"tid": 1, "state": 1})) == [2, 3, 4]
    assert [r.tid for r in s.find_trials("e", limit=3)] == [2, 3, 4]
    assert [r.tid for r in s.find_trials("e", DONE)] == [1]
    assert sorted(d["tid"] for d in s.recent_trials("e", 2)) == [3, 4]
    with pytest.raises(StoreError, match="its trial ids go up to 4"):
        s.get_trial("e", 9)


@pytest.mark.parametrize("next_tid", [10, 10**12, "10", None])
def test_the_trials_a_read_missed_are_read_by_id_whatever_the_counter_says(mongomock_store, next_tid):
    """A resume's reads by state miss a trial handed back between two of them; the tids the
    counter handed out that no read returned are read by `_id`. A counter someone set to a huge
    or non-integer value costs a bounded read, or none."""
    s = mongomock_store
    _queued(s, 8)  # tids 0-7; with a counter of 10, tids 8 and 9 were reserved and never used
    raw.experiments(s).update_one({"_id": "e"}, {"$set": {"next_tid": next_tid}})
    fields = {"tid": 1, "state": 1}
    found = sorted(d["tid"] for d in s.unread_trials("e", 2, {3, 5}, fields))
    assert found == ([4, 6, 7] if isinstance(next_tid, int) else [])
    assert s.unread_trials("e", -1, set(range(8)), fields) == []
    raw.trials(s).update_one({"tid": 6}, {"$set": {"exp_key": "other"}})  # planted under e's key: not e's
    assert sorted(d["tid"] for d in s.unread_trials("e", 2, {3, 5}, fields)) == ([4, 7] if isinstance(next_tid, int)
                                                                                 else [])
    if next_tid == 10**12:  # and a trial planted far above the others: a bounded walk down from it
        raw.trials(s).insert_one(dict(raw.trials(s).find_one({"tid": 7}), _id="e:999999999999", tid=10**12 - 1))
        assert s.unread_trials("e", 2, {3, 5, 10**12 - 1}, fields) == []


def test_claim_report_counts(mongomock_store):
    s = mongomock_store
    ids = _queued(s, 2)
    before = _now()
    doc = s.claim("w1", 30, "e")
    assert doc["_id"] in ids and doc["state"] == RUNNING and doc["owner"] == "w1" and doc["attempts"] == 1
    assert len(doc["lease_token"]) == 32 and "params" in doc and doc["exp_key"] == "e"
    assert before + dt.timedelta(seconds=29) < doc["lease_until"] < _now() + dt.timedelta(seconds=31)
    stored = s.history("e")[doc["tid"]]
    assert stored["state"] == RUNNING and stored["owner"] == "w1" and stored["lease_until"] == doc["lease_until"]
    assert s.counts("e") == {NEW: 1, RUNNING: 1, DONE: 0, ERROR: 0}
    assert s.report(doc["_id"], doc["lease_token"], DONE, OK) is True
    assert s.counts("e") == {NEW: 1, RUNNING: 0, DONE: 1, ERROR: 0}
    finished = s.history("e")[doc["tid"]]
    assert finished["result"] == OK and finished["finished"] >= before and finished.get("lease_until") is None
    second = s.claim("w2", 30)  # any experiment
    assert second["_id"] != doc["_id"]
    assert s.report(second["_id"], second["lease_token"], ERROR, {"status": "fail"},
                    {"type": "ValueError", "message": "bad", "traceback": "..."}) is True
    assert s.claim("w3", 30, "e") is None
    assert s.counts("e") == {NEW: 0, RUNNING: 0, DONE: 1, ERROR: 1}
    with pytest.raises(ValueError):
        s.report(doc["_id"], doc["lease_token"], RUNNING, None)


def test_a_worker_with_a_slot_claims_its_own_trials_first(mongomock_store, monkeypatch):
    """Worker i of k takes the trials whose tid is i mod k, so k workers reading the queue together
    seldom pick the same trial; when none of its own waits, it takes one of k workers' share of the
    others: at once for a single trial, and in a batch of short trials only those it has seen
    waiting for a while (their owner died or is busy), since an active owner claims them first."""
    s = mongomock_store
    _queued(s, 9)
    assert sorted(d["tid"] for d in s.report_and_claim([], "w1", 30, "e", n=4, slot=(1, 4))[1]) == [1, 5]
    assert s.report_and_claim([], "w1", 30, "e", n=4, slot=(1, 4))[1] == []  # 7 others', seen just now
    monkeypatch.setattr(picks, "STEAL_AFTER", 0.0)  # as if they had waited long enough
    (other,) = s.report_and_claim([], "w1", 30, "e", n=4, slot=(1, 4))[1]  # 7 left, none its own: 7 // 4
    assert other["tid"] in {0, 2, 3, 4, 6, 7, 8}
    monkeypatch.setattr(picks, "STEAL_AFTER", 60.0)
    (single,) = s.report_and_claim([], "w1", 30, "e", n=1, slot=(1, 4))[1]  # one trial at a time: at once
    assert single["tid"] % 4 != 1
    assert len(s.report_and_claim([], "w2", 30, "e", n=8)[1]) == 2  # no slot: at most half of the 5 left
    assert s.counts("e") == {NEW: 3, RUNNING: 6, DONE: 0, ERROR: 0}


def test_a_slot_worker_claiming_batches_reads_only_the_trials_new_to_it(mongomock_store, monkeypatch):
    """Between two reads of the whole queue, a slot worker claiming short trials asks only for the
    tids above what it has read, or from its own trial still waiting; the read of the whole queue,
    every STEAL_AFTER seconds, finds its trial handed back below that range."""
    s = mongomock_store
    _queued(s, 6)
    trials, filters = raw.trials(s), []
    find = trials.find
    monkeypatch.setattr(trials, "find", lambda where, *a, **k: filters.append(where) or find(where, *a, **k))
    first = s.report_and_claim([], "w", 30, "e", n=2, slot=(0, 2))[1]
    (left,) = {0, 2, 4} - {d["tid"] for d in first}  # two of its three, in the read's shuffled order
    assert "tid" not in filters[-1]
    assert [d["tid"] for d in s.report_and_claim([], "w", 30, "e", n=2, slot=(0, 2))[1]] == [left]
    assert filters[-1]["tid"] == {"$gte": left}
    s.insert_trials("e", [(6, {"x": 0.6}), (7, {"x": 0.7}), (8, {"x": 0.8})])
    assert s.release(first[0]["_id"], first[0]["lease_token"])  # below the range now
    assert sorted(d["tid"] for d in s.report_and_claim([], "w", 30, "e", n=2, slot=(0, 2))[1]) == [6, 8]
    assert filters[-1]["tid"] == {"$gte": 6}
    assert s.report_and_claim([], "w", 30, "e", n=2, slot=(0, 2))[1] == []
    monkeypatch.setattr(picks, "STEAL_AFTER", 0.0)  # the whole queue is due
    assert [d["tid"] for d in s.report_and_claim([], "w", 30, "e", n=2, slot=(0, 2))[1]] == [first[0]["tid"]]
    assert "tid" not in filters[-1]
    assert [d["tid"] for d in s.report_and_claim([], "w", 30, "e", n=1, slot=(0, 2))[1]] in ([1], [3], [5], [7])
    assert "tid" not in filters[-1]  # one trial at a time: the whole queue


def test_claim_stays_within_its_experiment(mongomock_store):
    _queued(mongomock_store, 1, "a")
    _experiment(mongomock_store, "b")
    assert mongomock_store.claim("w", 30, "b") is None
    assert mongomock_store.claim("w", 30, "a")["exp_key"] == "a"


def test_the_index_for_claims_across_experiments_comes_with_the_first_such_worker(mongomock_store):
    s = mongomock_store
    _queued(s, 2, "a")
    s.claim("w", 30, "a")
    s.reap_expired("a", 3)
    assert "claim_any" not in raw.trials(s).index_information()  # each index costs every trial's writes
    assert s.claim("w", 30)["exp_key"] == "a"
    assert "claim_any" in raw.trials(s).index_information()


def test_a_report_state_must_be_final():
    with pytest.raises(ValueError, match="'RUNNING' must be DONE or ERROR"):
        Report("id", "token", RUNNING, None)


def test_a_stale_token_is_refused_everywhere(mongomock_store):
    s = mongomock_store
    _queued(s)
    doc = s.claim("w1", 30, "e")
    assert s.heartbeat(doc["_id"], "stale", 30) is False
    assert s.report(doc["_id"], "stale", DONE, OK) is False
    assert s.release(doc["_id"], "stale") is False
    assert s.history("e")[0]["state"] == RUNNING
    assert s.report(doc["_id"], doc["lease_token"], DONE, OK) is True
    assert s.report(doc["_id"], doc["lease_token"], DONE, {"loss": 0.0, "status": "ok"}) is False  # only once
    assert s.history("e")[0]["result"] == OK


def test_heartbeat_extends_the_lease(mongomock_store):
    _queued(mongomock_store)
    doc = mongomock_store.claim("w1", 5, "e")
    assert mongomock_store.heartbeat(doc["_id"], doc["lease_token"], 300) is True
    lease = mongomock_store.running_trials("e")[0]["lease_until"]
    assert lease > doc["lease_until"] + dt.timedelta(seconds=290)


def test_released_trials_are_claimed_again(mongomock_store):
    s = mongomock_store
    _queued(s)
    doc = s.claim("w1", 30, "e")
    assert s.release(doc["_id"], doc["lease_token"]) is True
    [trial] = s.open_trials("e")
    assert trial["state"] == NEW and trial["owner"] is None and trial.get("lease_until") is None
    again = s.claim("w2", 30, "e")
    assert again["_id"] == doc["_id"] and again["attempts"] == 2 and again["lease_token"] != doc["lease_token"]


def test_reap_returns_expired_trials_then_fails_them_after_max_attempts(mongomock_store):
    s = mongomock_store
    _queued(s)
    later = _now() + dt.timedelta(seconds=60)
    doc = s.claim("w1", 30, "e")
    assert len(s.reap_expired("e", max_attempts=2)) == 0  # the lease is still good
    assert len(s.reap_expired("e", max_attempts=2, now=later)) == 1
    assert s.counts("e")[NEW] == 1
    assert s.report(doc["_id"], doc["lease_token"], DONE, OK) is False  # the old owner lost it
    doc = s.claim("w2", 30, "e")
    assert doc["attempts"] == 2
    assert len(s.reap_expired(None, max_attempts=2, now=later)) == 1  # across experiments
    [trial] = s.finished_among("e", [doc["_id"]])
    assert trial["state"] == ERROR and trial["error"]["type"] == "LeaseExpired"
    assert "attempt 2 of 2" in trial["error"]["message"] and "w2" in trial["error"]["message"]
    assert len(s.reap_expired("e", max_attempts=2, now=later)) == 0


def test_coordinator_lease(mongomock_store):
    s = mongomock_store
    _experiment(s)
    s.acquire_coordinator("e", "c1", 30)
    s.acquire_coordinator("e", "c1", 30)  # the holder may take it again
    with pytest.raises(CoordinatorBusy, match=r"c1.*lease until 20\d\d-") as err:
        s.acquire_coordinator("e", "c2", 30)
    assert "'e'" in str(err.value)
    assert s.renew_coordinator("e", "c1", 30) is True and s.renew_coordinator("e", "c2", 30) is False
    s.acquire_coordinator("e", "c1", -1)  # let it expire
    s.acquire_coordinator("e", "c2", 30)  # an expired lease is taken over
    assert s.renew_coordinator("e", "c1", 30) is False
    s.release_coordinator("e", "c1")  # not the holder: nothing happens
    assert s.get_experiment("e")["coordinator"]["owner"] == "c2"
    s.release_coordinator("e", "c2")
    assert s.get_experiment("e")["coordinator"] is None
    s.acquire_coordinator("e", "c3", 30)
    with pytest.raises(ExperimentNotFound):
        s.acquire_coordinator("missing", "c3", 30)


def test_finished_among_returns_only_what_changed(mongomock_store):
    s = mongomock_store
    ids = _queued(s, 4)
    a = s.claim("w", 30, "e")
    b = s.claim("w", 30, "e")
    s.report(a["_id"], a["lease_token"], DONE, OK)
    assert s.finished_among("e", ids) == [
        {"_id": a["_id"], "tid": a["tid"], "state": DONE, "params": a["params"], "result": OK, "error": None,
         "batch": 1}]
    s.report(b["_id"], b["lease_token"], ERROR, {"status": "fail"}, {"type": "E", "message": "m", "traceback": ""})
    open_ids = [i for i in ids if i != a["_id"]]
    assert [d["_id"] for d in s.finished_among("e", open_ids)] == [b["_id"]]
    assert {d["_id"] for d in s.open_trials("e")} == set(ids) - {a["_id"], b["_id"]}
    assert s.finished_among("e", []) == []


def test_finished_among_by_tid_range_gives_what_the_id_read_gives(mongomock_store, monkeypatch):
    """Given 16 or more close tids the finished trials are read by state and tid range (cheaper on SecantusDB);
    trials in the range the caller no longer has open, or planted with an `_id` no set can hold, are
    left out, and spread-out tids or a few open trials fall back to the `_id` read."""
    s = mongomock_store
    ids = _queued(s, 20)
    a, b, c = (s.claim("w", 30, "e") for _ in range(3))
    s.report(a["_id"], a["lease_token"], DONE, OK)  # recorded by the caller already: no longer open
    s.report(b["_id"], b["lease_token"], ERROR, {"status": "fail"}, {"type": "E", "message": "m", "traceback": ""})
    s.report(c["_id"], c["lease_token"], DONE, OK)
    raw.trials(s).insert_one({"_id": {"planted": 1}, "exp_key": "e", "tid": 2.5, "state": DONE})
    tids = {d["_id"]: d["tid"] for d in s.history("e") if isinstance(d["_id"], type(a["_id"]))}
    open_ids = [i for i in ids if i != a["_id"]]
    filters: list[dict] = []
    find = s._trials.find
    monkeypatch.setattr(s._trials, "find", lambda f, *a, **k: filters.append(f) or find(f, *a, **k))
    by_range = s.finished_among("e", open_ids, [tids[i] for i in open_ids])
    assert [set(f) for f in filters] == [{"exp_key", "state", "tid"}] * 2  # one read per final state
    assert sorted(d["_id"] for d in by_range) == sorted([b["_id"], c["_id"]])
    assert sorted(by_range, key=lambda d: d["tid"]) == sorted(s.finished_among("e", open_ids), key=lambda d: d["tid"])
    filters.clear()
    spread = [tids[i] for i in open_ids[:-1]] + [10_000]  # one tid far away: by `_id`
    assert {d["_id"] for d in s.finished_among("e", open_ids, spread)} == {b["_id"], c["_id"]}
    few = [b["_id"], c["_id"]] + [i for i in open_ids if i not in (b["_id"], c["_id"])][:4]
    assert {d["_id"] for d in s.finished_among("e", few, [tids[i] for i in few])} == {b["_id"], c["_id"]}
    assert [set(f) for f in filters] == [{"_id", "state"}] * 2  # and for a few open trials


def test_a_claim_that_lost_every_pick_reads_the_queue_again(mongomock_store, monkeypatch):
    """Another worker took the trial this one read: the compare-and-set modifies nothing, so it reads
    the queue afresh (not the lost candidates by `_id`) and claims the trial still waiting."""
    s = mongomock_store
    _queued(s, 2)
    taken = s.claim("w1", 30, "e")
    reads: list[dict] = []
    fresh = s._read_candidates

    def read(query: dict, ranged: bool = False) -> list[dict]:
        reads.append(query)
        return [dict(taken, state=NEW)] if len(reads) == 1 else fresh(query, ranged)  # the first: before w1's claim

    monkeypatch.setattr(s, "_read_candidates", read)
    (doc,) = s.report_and_claim([], "w2", 30, "e", n=1)[1]
    assert doc["_id"] != taken["_id"] and len(reads) == 2
    assert s.history("e")[taken["tid"]]["owner"] == "w1" and s.history("e")[doc["tid"]]["owner"] == "w2"


def test_unknown_extra_fields_are_ignored(mongomock_store):
    s = mongomock_store
    _queued(s, 2)
    raw.experiments(s).update_one({"_id": "e"}, {"$set": {"from_the_future": {"a": 1}}})
    raw.trials(s).update_many({}, {"$set": {"surprise": [1, 2], "version": 9}})
    assert s.get_experiment("e")["max_evals"] == 10
    s.acquire_coordinator("e", "c", 30)
    doc = s.claim("w", 30, "e")
    assert s.heartbeat(doc["_id"], doc["lease_token"], 30)
    assert s.report(doc["_id"], doc["lease_token"], DONE, OK)
    assert [d["tid"] for d in s.finished_among("e", [doc["_id"]])] == [doc["tid"]]
    assert len(s.history("e")) == 2 and s.counts("e")[DONE] == 1 and len(s.running_trials("e")) == 0


def test_a_result_too_large_for_a_document_becomes_an_error(mongomock_store):
    s = mongomock_store
    _queued(s)
    doc = s.claim("w", 30, "e")
    huge = {"loss": 1.0, "status": "ok", "blob": "x" * (17 * 1024 * 1024)}
    assert s.report(doc["_id"], "stale", DONE, huge) is False  # still conditioned on the lease
    assert s.report(doc["_id"], doc["lease_token"], DONE, huge) is True
    [trial] = s.history("e")
    assert trial["state"] == ERROR and trial["error"]["type"] == "ResultTooLarge"
    assert "17.0 MiB" in trial["error"]["message"] and trial["result"] == {"status": "fail"}


def test_running_trials_for_status(mongomock_store):
    _queued(mongomock_store, 2)
    doc = mongomock_store.claim("w9", 30, "e")
    [row] = mongomock_store.running_trials("e")
    assert row["tid"] == doc["tid"] and row["owner"] == "w9" and row["claimed"] == doc["claimed"]
    assert row["lease_until"] == doc["lease_until"]


def test_a_client_without_tz_aware_still_gives_utc_leases():
    s = Store("mongodb://mock", client=mongomock.MongoClient())
    _queued(s)
    s.claim("w", 30, "e")
    assert len(s.reap_expired("e", 3, now=_now() + dt.timedelta(seconds=60))) == 1


def test_retry_waits_out_an_outage_but_not_a_refusal(mongomock_store):
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise StoreUnavailable("server restarting")
        return "ok"

    assert mongomock_store.retry(flaky, timeout=5) == "ok" and len(calls) == 2
    with pytest.raises(ExperimentNotFound):
        mongomock_store.retry(mongomock_store.get_experiment, "missing", timeout=60)
    with pytest.raises(StoreUnavailable):
        mongomock_store.retry(lambda: (_ for _ in ()).throw(StoreUnavailable("down")), timeout=0.1)


def test_states_are_plain_strings():
    assert (NEW, RUNNING, DONE, ERROR) == ("NEW", "RUNNING", "DONE", "ERROR") and FINISHED == (DONE, ERROR)
    assert issubclass(StoreUnavailable, StoreError)
