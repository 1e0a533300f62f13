"""Reading an experiment's history back when its coordinator starts: the snapshot's rows
(snapshot.py) plus the trials it leaves out, or every trial when there is no usable snapshot.

The workers go on while the trials are read, so a trial may change state between two reads by state
(store.History.trials_since): one claimed or finished in between is read twice, one a worker hands
back (RUNNING at the read of NEW, NEW at the read of RUNNING) by neither. So each tid keeps one row,
its finished reading counted once, and the tids the experiment's counter handed out that no read
returned are read by `_id` at the end (store.History.unread_trials).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from hyperdist.algorithms.history import PENDING
from hyperdist.distributed import snapshot
from hyperdist.space.compiled import SearchSpace
from hyperdist.store import FINISHED, Store
from hyperdist.store.document import RESUME_FIELDS

CountFinished = Callable[[dict], tuple[int, float | None]]  # a finished trial's (state, loss); counts it once


def stored_snapshot(store: Store, exp_key: str, space: SearchSpace) -> tuple[snapshot.Snapshot, bool]:
    """The experiment's snapshot, and whether it is usable; one taken with another space, or
    damaged, is deleted (a new one is built from every trial)."""
    stored = store.read_snapshot(exp_key)
    snap = snapshot.load(stored, space.hash, len(space))
    if snap is not None:
        return snap, True
    if stored:
        store.delete_snapshot(exp_key)
    return snapshot.Snapshot.empty(len(space)), False


@dataclass
class Rows:
    """The trials read besides the snapshot, one row per tid (`at`: tid -> row), and the open ones
    by `_id`."""

    space: SearchSpace
    count_finished: CountFinished
    tids: list[int] = field(default_factory=list)
    X: list[np.ndarray] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    states: list[int] = field(default_factory=list)
    at: dict[int, int] = field(default_factory=dict)
    open: dict[Any, int] = field(default_factory=dict)

    def add(self, doc: dict) -> None:
        """One trial document as read; a second reading of a tid counts only when it is the trial
        finished since the first."""
        tid = int(doc["tid"])
        finished = doc["state"] in FINISHED
        k = self.at.get(tid)
        if k is not None and (not finished or self.states[k] != PENDING):
            return
        if finished:
            state, loss = self.count_finished(doc)
            if k is not None:  # it was read open first: no longer
                for key in [key for key, t in self.open.items() if t == tid]:
                    del self.open[key]
                self.losses[k], self.states[k] = np.nan if loss is None else loss, state
                return
        else:
            state, loss = PENDING, None
            self.open[doc["_id"]] = tid
        self.at[tid] = len(self.tids)
        self.tids.append(tid)
        self.X.append(self.space.to_row(doc.get("params") or {}))
        self.losses.append(np.nan if loss is None else loss)
        self.states.append(state)


def read_history(store: Store, exp_key: str, space: SearchSpace, snap: snapshot.Snapshot, usable: bool,
                 count_finished: CountFinished) -> tuple[Rows, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The trials `snap` leaves out (every trial when it is not `usable`), streamed into rows as
    they come, so 100 000 trials fit in a few tens of MB; and every row, the snapshot's included,
    as (tids, X, loss, state) in tid order."""
    docs: Iterable[dict] = (store.trials_since(exp_key, snap.watermark, snap.open_ids, RESUME_FIELDS) if usable
                            else store.iter_history(exp_key, RESUME_FIELDS))
    rows = Rows(space, count_finished)
    for doc in docs:
        rows.add(doc)
    for doc in store.unread_trials(exp_key, snap.watermark, set(rows.at), RESUME_FIELDS):
        rows.add(doc)
    tids = np.concatenate([snap.tids, np.array(rows.tids, dtype=np.int64)])
    order = np.argsort(tids, kind="stable")
    X = np.vstack([snap.X, np.array(rows.X).reshape(len(rows.X), len(space))])
    return rows, (tids[order], X[order], np.concatenate([snap.loss, rows.losses])[order],
                  np.concatenate([snap.state, np.array(rows.states, dtype=np.int8)])[order])
