"""Which of the waiting trials it read a worker tries to claim: what decides whether workers
reading the queue together race for the same trial.

Every race costs the loser a compare-and-set and a read for nothing (on SecantusDB a commit each).
So the k workers a search starts are numbered (`slot`): each takes the trials whose tid is its own
modulo k first, and another's only when that one has been seen waiting for a while, which means
its owner died or is busy with a long trial.
"""
from __future__ import annotations

import time

# Seconds another slot's short trial must have been seen waiting before a worker takes it: the
# owner of a waiting short trial claims it within milliseconds. Before this rule, 99 of 112 such
# steals in a 500-trial null search at 8 workers lost the race to the owner (docs/performance.md).
STEAL_AFTER = 0.25


class Sightings:
    """When this client first saw each trial it reads waiting, by `_id`; and, for a worker with a
    slot, from which tid its next read of the queue need look.

    SecantusDB's cost for a read of the queue grows with the NEW trials it matches (1.3 ms of server
    CPU for 28, 0.65 ms for 8; docs/store-notes.md), and a slot worker claiming short trials has
    taken all of its own it read, so between two reads only the trials inserted since are new to
    it. It reads the whole queue every STEAL_AFTER seconds: that read finds a trial of its slot
    handed back below the range, and the others' trials waiting long enough to take."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._floor: int | None = None
        self._whole = 0.0  # when the whole queue was last read

    def floor(self) -> int | None:
        """The lowest tid the next read need match, or None when the whole queue is due."""
        if self._floor is None or time.monotonic() - self._whole >= STEAL_AFTER:
            return None
        return self._floor

    def saw(self, docs: list[dict], whole: bool = True) -> None:
        """The trials of a read of the queue (of all of it, or of tids from `floor()` on); those no
        longer in a whole read are forgotten."""
        now, since = time.monotonic(), self._since
        if whole:
            self._since, self._whole = {k: since.get(k, now) for k in map(key, docs)}, now
        else:
            self._since.update((k, since.get(k, now)) for k in map(key, docs))

    def left(self, read: list[dict], unclaimed: list[dict], slot: tuple[int, int]) -> None:
        """After a claim from `read`: the next read starts at the lowest trial of the slot still
        waiting in `unclaimed`, else above all of `read` (an empty read changes nothing)."""
        i, k = slot
        mine, tids = [t for t in _tids(unclaimed) if t % k == i], _tids(read)
        if mine or tids:
            self._floor = min(mine) if mine else max(tids) + 1

    def stale(self) -> frozenset[str]:
        """The trials seen waiting for at least STEAL_AFTER seconds (keys from `key`)."""
        limit = time.monotonic() - STEAL_AFTER
        return frozenset(k for k, since in self._since.items() if since <= limit)


def pick(candidates: list[dict], n: int, slot: tuple[int, int] | None,
         stale: frozenset[str] = frozenset()) -> tuple[list[dict], list[dict]]:
    """(picks, the other candidates), the candidates in the shuffled order they were read in.

    Without a slot: up to `n`, at most half of them, so the others find some too. The i-th of k
    workers takes up to `n` of its own (tid = i mod k). When none of its own waits it takes one of
    k workers' share of the others: at once when it claims one trial at a time (its trials are not
    short, so the owners are probably busy), but in a batch of short trials (`n` > 1) only those in
    `stale`."""
    if slot is None:
        take = min(n, max(1, len(candidates) // 2))
        return candidates[:take], candidates[take:]
    i, k = slot
    picks = [c for c in candidates if isinstance(c.get("tid"), int) and c["tid"] % k == i][:n]
    if not picks:
        others = candidates if n == 1 else [c for c in candidates if key(c) in stale]
        picks = others[:min(n, max(1, len(others) // k))]
    taken = {id(c) for c in picks}
    return picks, [c for c in candidates if id(c) not in taken]


def key(doc: dict) -> str:
    """A trial's `_id` as a dict key (someone may have written an `_id` no set can hold)."""
    return repr(doc.get("_id"))


def _tids(docs: list[dict]) -> list[int]:
    return [d["tid"] for d in docs if isinstance(d.get("tid"), int) and not isinstance(d["tid"], bool)]
