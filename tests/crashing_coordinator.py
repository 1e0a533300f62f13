"""A coordinator that kills its own process (os._exit, as abrupt as SIGKILL) at a chosen point.

    python crashing_coordinator.py URL DB EXP POINT MAX_EVALS
POINT: before_insert | after_insert (on the 3rd insert) | during_history (while loading the history)
       | before_snapshot | after_snapshot (on the 2nd snapshot chunk, one per 5 finished trials)
"""
import os
import sys

import objectives
from hyperdist import tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store

url, db, exp, point, max_evals = sys.argv[1:6]
calls = {"n": 0}


def dying(real, when, at=3):
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if when == "before" and calls["n"] >= at:
            os._exit(9)
        out = real(*args, **kwargs)
        if when == "after" and calls["n"] >= at:
            os._exit(9)
        return out
    return wrapper


if point == "before_insert":
    Store.insert_trials = dying(Store.insert_trials, "before")
elif point == "after_insert":
    Store.insert_trials = dying(Store.insert_trials, "after")
elif point == "during_history":
    reading = Store.iter_history

    def dying_history(self, exp_key, fields=None):
        for doc in reading(self, exp_key, fields):  # one trial read, then the process dies
            yield doc
            os._exit(9)
        os._exit(9)
    Store.iter_history = dying_history
elif point in ("before_snapshot", "after_snapshot"):
    Store.append_snapshot = dying(Store.append_snapshot, point.split("_")[0], at=2)

coord = Coordinator(Store(url, db=db), exp, compile_space(objectives.space), tpe.suggest, StopRules(int(max_evals)),
                    CoordinatorConfig(seed=4, workers=2, snapshot_every=5 if "snapshot" in point else 1000),
                    objective=f"{os.path.dirname(os.path.abspath(__file__))}/objectives.py:quadratic")
coord.start(resume=True)
coord.run()
