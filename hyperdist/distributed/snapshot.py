"""Snapshots of an experiment's numeric history, so that a resume reads a few documents instead of
every trial (streaming 100 000 trial documents cost SecantusDB 8-9 s of CPU, docs/performance.md).

The coordinator appends a chunk each time `snapshot_every` trials have finished since the last one, and
when it stops. A chunk holds, as packed arrays, the rows of the trials that finished since the previous
chunk (tid, parameters as numbers, loss, state), and where the coordinator stood: the highest tid it
had recorded (`watermark`) and the `_id`s of the trials open then. A resume takes every chunk's rows
and reads from the trials only those open at the last chunk and those with a higher tid: any other
trial finished before the last chunk was written, so it is in one. This holds because a finished
trial never changes (every report is conditioned on the trial still RUNNING) and only the
coordinator holding the lease inserts trials, with ever larger tids.

Pure data: bytes, numbers and the `_id`s as the store gave them; no code is stored.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

log = logging.getLogger("hyperdist.snapshot")
CHUNK_BYTES = 4 * 2**20  # a chunk document stays far below MongoDB's 16 MiB


@dataclass(frozen=True)
class Snapshot:
    """Every chunk's rows in tid order, and where the last chunk left off."""

    tids: np.ndarray
    X: np.ndarray
    loss: np.ndarray
    state: np.ndarray
    best: tuple[float, int] | None  # the best 'ok' trial among the rows
    watermark: int
    open_ids: list
    next_seq: int

    @classmethod
    def empty(cls, d: int) -> "Snapshot":
        """No rows yet: a resume then reads every trial from the watermark -1 up."""
        return cls(np.empty(0, dtype=np.int64), np.empty((0, d)), np.empty(0), np.empty(0, dtype=np.int8), None, -1,
                   [], 0)


def chunks(seq: int, space_hash: str, tids: Sequence[int], X: np.ndarray, loss: np.ndarray, state: np.ndarray,
           best: tuple[float, int] | None, watermark: int, open_ids: list) -> list[dict]:
    """The documents for rows that finished since the last chunk, numbered from `seq`; each one
    carries the same `watermark` and open ids, so any of them can be the last one read."""
    per_doc = max(1, CHUNK_BYTES // (8 * X.shape[1] + 17))
    rows = np.asarray(tids, dtype="<i8")
    docs = []
    for k, start in enumerate(range(0, len(rows), per_doc)):
        part = slice(start, start + per_doc)
        docs.append({
            "seq": seq + k, "space_hash": space_hash, "n": len(rows[part]), "d": X.shape[1],
            "tid": rows[part].tobytes(), "X": np.ascontiguousarray(X[part], dtype="<f8").tobytes(),
            "loss": np.asarray(loss[part], dtype="<f8").tobytes(), "state": np.asarray(state[part], dtype="i1").tobytes(),
            "best": list(best) if best else None, "watermark": int(watermark), "open": list(open_ids),
        })
    return docs


def load(docs: list[dict], space_hash: str, d: int) -> Snapshot | None:
    """The snapshot the chunk documents (sorted by seq) make, or None when there is none or it
    cannot be trusted (another space, a gap, a damaged chunk): the caller then reads every trial."""
    if not docs:
        return None
    problem = _problem(docs, space_hash, d)
    if problem:
        log.warning("not using the stored snapshot (%s); reading every trial instead", problem)
        return None
    tids = np.concatenate([np.frombuffer(c["tid"], dtype="<i8") for c in docs])
    order = np.argsort(tids, kind="stable")
    if len(tids) > 1 and np.any(np.diff(tids[order]) == 0):
        log.warning("not using the stored snapshot (a trial appears twice); reading every trial instead")
        return None
    X = np.concatenate([np.frombuffer(c["X"], dtype="<f8").reshape(c["n"], d) for c in docs])
    loss = np.concatenate([np.frombuffer(c["loss"], dtype="<f8") for c in docs])
    state = np.concatenate([np.frombuffer(c["state"], dtype="i1") for c in docs])
    last = docs[-1]
    best = tuple(last["best"]) if last.get("best") else None
    return Snapshot(tids[order], X[order], loss[order], state[order],
                    (float(best[0]), int(best[1])) if best else None, int(last["watermark"]), list(last["open"]),
                    int(last["seq"]) + 1)


def _problem(docs: list[dict], space_hash: str, d: int) -> str | None:
    for k, c in enumerate(docs):
        if c.get("seq") != k:
            return f"chunk {k} is missing"
        if c.get("space_hash") != space_hash:
            return "it was taken with another search space"
        try:
            n = int(c["n"])
            sizes = (len(c["tid"]) == 8 * n, len(c["X"]) == 8 * n * d, len(c["loss"]) == 8 * n, len(c["state"]) == n)
        except (KeyError, TypeError, ValueError):
            return f"chunk {k} is incomplete"
        if c.get("d") != d or not all(sizes):
            return f"chunk {k} does not match the space's {d} parameters"
    return None
