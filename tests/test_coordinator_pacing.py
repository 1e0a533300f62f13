"""How the coordinator paces itself: ticks spaced by the finishing rate, the queue sized by it.
The pacing is pure (hyperdist/distributed/pacing.py); the last test checks the coordinator asks it."""
from __future__ import annotations

import time

import objectives
from hyperdist import tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.distributed.pacing import Pacing
from hyperdist.space.compiled import compile_space


def _finishing(pacing: Pacing, per_second: float) -> None:
    now = time.monotonic()
    for i in reversed(range(32)):
        pacing.finished(0, now=now - i / per_second)


def test_slow_trials_keep_the_default_queue_and_space_the_ticks():
    pacing = Pacing(workers=4)
    assert pacing.waiting() == 8 and pacing.pause() == pacing.poll_interval  # nothing finished yet
    _finishing(pacing, 10.0)
    assert abs(pacing.rate() - 10.0) < 0.5 and pacing.waiting() == 8
    assert abs(pacing.pause() - 0.267) < 0.05  # a third of the queue drains at 10 trials/s


def test_fast_trials_grow_the_queue_so_it_does_not_run_dry_between_ticks():
    pacing = Pacing(workers=4)
    pacing.ticked(0.1)  # the moving average: 0.2 x 0.1 = 20 ms
    _finishing(pacing, 100.0)
    assert pacing.waiting() == 11  # 100/s x (50 ms pause + 20 ms tick) / (1 - 1/3)
    _finishing(pacing, 5000.0)
    assert pacing.waiting() == 32  # at most 4 x the default
    pinned = Pacing(workers=4, queue=5)
    _finishing(pinned, 150.0)
    assert pinned.waiting() == 5 and pinned.wanted(open_trials=9) == 0  # an explicit queue bounds open trials


def test_the_queue_is_counted_only_while_workers_claim_batches():
    pacing = Pacing(workers=4)
    assert pacing.wanted(open_trials=12) == 0 and not pacing.counts_new(1)  # 4 running + 8 waiting
    pacing.finished(1, batch=4)
    assert pacing.counts_new(1) and pacing.counts_new(32) and not pacing.counts_new(33)
    assert pacing.wanted(open_trials=11, new_trials=0) == 8  # none of the open ones is NEW: refill all


def test_the_coordinator_counts_new_trials_after_a_batch(mongomock_store):
    coord = Coordinator(mongomock_store, "pace", compile_space(objectives.space), tpe.suggest, StopRules(1000),
                        CoordinatorConfig(workers=4))
    coord.open = {i: i for i in range(12)}
    assert coord._wanted() == 0
    coord._record({"_id": 99, "tid": 99, "state": "DONE", "params": {}, "result": {"loss": 1.0, "status": "ok"},
                   "batch": 4})
    # 11 open, none of them NEW in the database: the count says the whole queue is missing
    assert coord._wanted() == coord.pacing.waiting() == 8
