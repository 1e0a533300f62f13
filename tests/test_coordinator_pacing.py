"""How the coordinator paces itself: ticks spaced by the finishing rate, the queue sized by it."""
from __future__ import annotations

import time

import objectives
from hyperdist import tpe
from hyperdist.coordinator import Coordinator, StopRules
from hyperdist.space import compile_space


def _coordinator(store, **kwargs) -> Coordinator:
    return Coordinator(store, "pace", compile_space(objectives.space), tpe.suggest, StopRules(1000), workers=4,
                       **kwargs)


def _finishing(coord: Coordinator, per_second: float) -> None:
    now = time.monotonic()
    coord._finish_times.extend(now - i / per_second for i in reversed(range(32)))


def test_slow_trials_keep_the_default_queue_and_space_the_ticks(mongomock_store):
    coord = _coordinator(mongomock_store)
    assert coord.waiting() == 8 and coord.pause() == coord.poll_interval  # nothing finished yet
    _finishing(coord, 10.0)
    assert coord.waiting() == 8
    assert abs(coord.pause() - 0.533) < 0.05  # two thirds of the queue drain at 10 trials/s


def test_fast_trials_grow_the_queue_so_it_does_not_run_dry_between_ticks(mongomock_store):
    coord = _coordinator(mongomock_store)
    coord._tick_seconds = 0.02
    _finishing(coord, 60.0)
    assert coord.waiting() == 13  # 60/s x (50 ms pause + 20 ms tick) / (1 - 2/3)
    _finishing(coord, 5000.0)
    assert coord.waiting() == 32  # at most 4 x the default
    pinned = _coordinator(mongomock_store, queue=5)
    _finishing(pinned, 150.0)
    assert pinned.waiting() == 5  # a queue given explicitly is kept


def test_the_queue_is_counted_only_while_workers_claim_batches(mongomock_store):
    coord = _coordinator(mongomock_store)
    coord.open = {i: i for i in range(12)}  # 4 workers + 8 waiting, by the arithmetic
    assert coord._wanted() == 0
    coord._record({"_id": 99, "tid": 99, "state": "DONE", "params": {}, "result": {"loss": 1.0, "status": "ok"},
                   "batch": 4})
    # 11 open, none of them NEW in the database: the count says the whole queue is missing
    assert coord._wanted() == coord.waiting() == 8
