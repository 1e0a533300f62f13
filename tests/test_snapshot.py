"""History snapshots: a resume reads the snapshot plus the trials it leaves out, and ends up with the
same history, counts and suggestions as a resume that reads every trial."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from pymongo import monitoring

import objectives
from hyperdist import hp, tpe
from hyperdist.distributed import snapshot
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.errors import CoordinatorBusy
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from hyperdist.store import testing as raw

SPACE = compile_space(objectives.space)


class TrialDocs(monitoring.CommandListener):
    """Counts the trial documents the server sends back."""

    def __init__(self) -> None:
        self.n = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") or {}
        if str(cursor.get("ns", "")).endswith(".trials"):
            self.n += len(cursor.get("firstBatch") or cursor.get("nextBatch") or [])

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _coordinator(store: Store, space=SPACE, **kwargs) -> Coordinator:
    return Coordinator(store, "snap", space, tpe.suggest, StopRules(500),
                       CoordinatorConfig(seed=3, workers=2, snapshot_every=10), **kwargs)


def _work(store: Store, coord: Coordinator, n: int, rng: np.random.Generator) -> None:
    """Tick, and finish `n` trials as a worker would: mostly ok, some failed, some errors."""
    for _ in range(n):
        coord.tick()
        trial = store.claim("worker", 60, "snap")
        kind = rng.choice(["ok", "fail", "error"], p=[0.8, 0.1, 0.1])
        if kind == "error":
            store.report(trial["_id"], trial["lease_token"], "ERROR", None, {"type": "ValueError", "message": "x"})
        else:
            store.report(trial["_id"], trial["lease_token"], "DONE",
                         {"loss": float(rng.normal()) if kind == "ok" else None, "status": kind})
    coord.tick()


def _resumed(url: str, db: str, *, snapshots: bool = True, space=SPACE, **kwargs) -> tuple[Coordinator, int]:
    """A coordinator resumed in a client of its own, and the trial documents its start read."""
    counter = TrialDocs()
    store = Store(url, db=db, event_listeners=[counter])
    if not snapshots:
        store.read_snapshot = lambda exp_key: []
    coord = _coordinator(store, space, **kwargs)
    coord.start(resume=True, allow_space_change=space is not SPACE)
    store.release_coordinator("snap", coord.owner)
    return coord, counter.n


def _same_history(a: Coordinator, b: Coordinator) -> None:
    oa, ob = a.table.observations(), b.table.observations()
    np.testing.assert_array_equal(oa.X, ob.X)
    np.testing.assert_array_equal(oa.loss, ob.loss)
    np.testing.assert_array_equal(oa.state, ob.state)
    assert (a.finished, a.best, a.open) == (b.finished, b.best, b.open)
    assert tpe.suggest([999], SPACE, oa, 7) == tpe.suggest([999], SPACE, ob, 7)


def test_a_resume_from_the_snapshot_equals_one_that_reads_every_trial(store, mongo_url):
    rng = np.random.default_rng(0)
    first = _coordinator(store)
    first.start()
    _work(store, first, 47, rng)
    assert first._snapshot_seq >= 4 and len(first._unsaved) < 10
    store.release_coordinator("snap", first.owner)  # the first coordinator dies without a last chunk
    running = store.claim("worker", 60, "snap")     # one trial is running, another finishes meanwhile
    late = store.claim("worker", 60, "snap")
    store.report(late["_id"], late["lease_token"], "DONE", {"loss": -10.0, "status": "ok"})

    fast, read_fast = _resumed(mongo_url, store.db_name)
    full, read_full = _resumed(mongo_url, store.db_name, snapshots=False)
    _same_history(fast, full)
    counts = store.counts("snap")
    assert fast.finished == counts["DONE"] + counts["ERROR"] == 48
    assert fast.best == (-10.0, late["tid"]) and running["_id"] in fast.open
    assert read_full == sum(counts.values())
    assert read_fast <= len(first._unsaved) + len(first.open) + 1  # what the last chunk left out
    assert read_fast <= read_full - 10 * first._snapshot_seq  # no trial of a chunk (10 or more each) is read

    # the late trial was read from the trials: the next chunk must hold it, or a later resume from
    # that chunk would miss it (it is below the new watermark and no longer open)
    fast.store.acquire_coordinator("snap", fast.owner, 30)
    fast.stop()
    again, read_again = _resumed(mongo_url, store.db_name)
    _same_history(again, full)
    assert read_again == len(again.open)


class Meddler(monitoring.CommandListener):
    """Before the client's first read of the trials in `state`, runs `act` once (through another
    client): a worker moving a trial on between two of a resume's reads by state."""

    def __init__(self, state: str, act) -> None:
        self.state, self.act = state, act

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        where = event.command.get("filter") or {}
        if event.command_name == "find" and where.get("state") == self.state and self.act is not None:
            act, self.act = self.act, None
            act()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize("case", ["finished between the reads", "handed back between the reads"])
def test_a_trial_that_changes_state_while_a_resume_reads_counts_once(store, mongo_url, case):
    """Found by CI: a trial read RUNNING, then DONE by the next read, was counted open and finished
    (the coordinator then counted it finished again, and the search ended one trial short). One a
    worker hands back (RUNNING at the read of NEW, NEW at the read of RUNNING) was read by neither."""
    first = _coordinator(store)
    first.start()
    _work(store, first, 27, np.random.default_rng(4))
    store.release_coordinator("snap", first.owner)  # the first coordinator dies
    claimed = list(iter(lambda: store.claim("worker", 60, "snap"), None))
    *others, running = sorted(claimed, key=lambda t: t["tid"])  # above the watermark: read by state
    assert running["tid"] > store.read_snapshot("snap")[-1]["watermark"]
    for t in others:
        store.release(t["_id"], t["lease_token"])
    if case == "finished between the reads":
        meddler = Meddler("DONE", lambda: store.report(running["_id"], running["lease_token"], "DONE",
                                                       {"loss": -10.0, "status": "ok"}))
    else:
        meddler = Meddler("RUNNING", lambda: store.release(running["_id"], running["lease_token"]))
    resumed = _coordinator(Store(mongo_url, db=store.db_name, event_listeners=[meddler]))
    resumed.start(resume=True)
    resumed.store.release_coordinator("snap", resumed.owner)
    assert meddler.act is None  # it did meddle

    full, _ = _resumed(mongo_url, store.db_name, snapshots=False)
    _same_history(resumed, full)
    counts = store.counts("snap")
    assert resumed.finished == counts["DONE"] + counts["ERROR"]
    assert len(resumed.table.observations().loss) == sum(counts.values())  # one row per trial
    assert (running["_id"] in resumed.open) == (case == "handed back between the reads")
    if case == "finished between the reads":
        assert resumed.best == (-10.0, running["tid"])


def test_a_snapshot_taken_with_another_space_is_replaced(store, mongo_url, caplog):
    first = _coordinator(store)
    first.start()
    _work(store, first, 25, np.random.default_rng(1))
    first.stop()
    wider = compile_space(dict(objectives.space, z=hp.uniform("z", 0, 1)))
    with caplog.at_level(logging.WARNING, logger="hyperdist.snapshot"):
        changed, read = _resumed(mongo_url, store.db_name, space=wider)
    assert "another search space" in caplog.text
    assert read == sum(store.counts("snap").values()) and store.read_snapshot("snap") == []
    assert changed.finished == 25 and len(changed._unsaved) == 25  # the next chunk starts the new snapshot
    changed.store.acquire_coordinator("snap", changed.owner, 30)
    changed.stop()
    assert {c["space_hash"] for c in store.read_snapshot("snap")} == {wider.hash}


def test_a_chunk_written_twice_by_its_owner_counts_once_and_by_another_means_the_lease_is_lost(store):
    rows = snapshot.chunks(0, SPACE.hash, [0, 1], np.zeros((2, len(SPACE))), np.zeros(2), np.zeros(2, dtype=np.int8),
                           None, 1, [])
    store.append_snapshot("e", "me", rows)
    store.append_snapshot("e", "me", rows)  # the reply to the first insert was lost
    assert len(store.read_snapshot("e")) == 1
    with pytest.raises(CoordinatorBusy, match="lost its lease"):
        store.append_snapshot("e", "someone else", rows)


def test_a_chunk_a_former_lease_holder_wrote_after_the_takeover_is_replaced(store):
    """A coordinator that stalled past its lease may write chunk seq 0 after the new holder loaded
    the history: the holder's own chunk replaces it, and state updates go only to the holder."""
    store.create_experiment("e", space={}, space_hash="h", objective=None, algo={}, max_evals=5, seed=0)
    store.acquire_coordinator("e", "new", 30)
    rows = snapshot.chunks(0, SPACE.hash, [0, 1], np.zeros((2, len(SPACE))), np.zeros(2), np.zeros(2, dtype=np.int8),
                           None, 1, [])
    store.append_snapshot("e", "stalled", rows)
    assert not store.update_experiment("e", holder="stalled", state="stopped")
    store.append_snapshot("e", "new", rows)
    assert store.update_experiment("e", holder="new", state="done")
    assert store.get_experiment("e")["state"] == "done"
    assert [c["owner"] for c in raw.database(store)["snapshots"].find({"exp_key": "e"})] == ["new"]


def test_chunks_round_trip_in_tid_order_and_split_by_size(monkeypatch):
    monkeypatch.setattr(snapshot, "CHUNK_BYTES", 1000)
    rng = np.random.default_rng(2)
    tids = rng.permutation(200)
    X = rng.normal(size=(200, 3))
    X[::7, 1] = np.nan  # inactive parameters stay NaN
    loss, state = rng.normal(size=200), rng.integers(0, 3, 200).astype(np.int8)
    docs = snapshot.chunks(0, "h", tids, X, loss, state, (-1.5, 4), 250, ["a", "b"])
    assert len(docs) == 9 and [d["seq"] for d in docs] == list(range(9))  # 1000 // (3 x 8 + 17) = 24 rows each
    snap = snapshot.load(docs, "h", 3)
    order = np.argsort(tids)
    np.testing.assert_array_equal(snap.tids, np.arange(200))
    np.testing.assert_array_equal(snap.X, X[order])
    np.testing.assert_array_equal(snap.loss, loss[order])
    np.testing.assert_array_equal(snap.state, state[order])
    assert (snap.best, snap.watermark, snap.open_ids, snap.next_seq) == ((-1.5, 4), 250, ["a", "b"], 9)


@pytest.mark.parametrize("damage, reason", [
    (lambda docs: docs.pop(1), "chunk 1 is missing"),
    (lambda docs: docs[0].update(space_hash="other"), "another search space"),
    (lambda docs: docs[2].update(X=docs[2]["X"][:-8]), "chunk 2 does not match"),
    (lambda docs: docs[0].pop("loss"), "chunk 0 is incomplete"),
    (lambda docs: docs[1].update(tid=docs[0]["tid"]), "a trial appears twice"),
])
def test_a_snapshot_that_cannot_be_trusted_is_not_used(monkeypatch, caplog, damage, reason):
    monkeypatch.setattr(snapshot, "CHUNK_BYTES", 200)
    docs = snapshot.chunks(0, "h", np.arange(30), np.ones((30, 2)), np.ones(30), np.zeros(30, dtype=np.int8),
                           None, 29, [])
    damage(docs)
    with caplog.at_level(logging.WARNING, logger="hyperdist.snapshot"):
        assert snapshot.load(docs, "h", 2) is None
    assert reason in caplog.text
