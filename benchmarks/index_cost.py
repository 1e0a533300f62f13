"""Server CPU per trial life on SecantusDB with the store's indexes, and with one more.

    python benchmarks/index_cost.py [--trials 600] [--pairs 3]

A trial's life is the protocol's three writes: an insert (in batches of 8, as the coordinator
inserts), a claim (compare-and-set NEW -> RUNNING) and a report (RUNNING -> DONE). Each variant
runs them on a fresh server, the variants in turn, `--pairs` times; the server's CPU comes from
/proc. The variants: the claim index alone (the store since issue 21's fifth pass, a trial's
`_id` being `exp_key:tid`); with the (state, tid) index that workers serving every experiment
add; with the unique (exp_key, tid) index the store had before. Why it matters: SecantusDB reads
the index list and writes each index's entries for every document it inserts or updates
(docs/store-notes.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from pymongo import ASCENDING, MongoClient  # noqa: E402

from distributed import SPACE  # noqa: E402
from hyperdist.space.compiled import compile_space  # noqa: E402
from server_costs import fresh_server, measure  # noqa: E402


VARIANTS = {"claim index (the store)": None,
            "+ (state, tid)": ([("state", ASCENDING), ("tid", ASCENDING)], False),
            "+ unique (exp_key, tid) (before)": ([("exp_key", ASCENDING), ("tid", ASCENDING)], True)}


def trial_lives(extra: tuple[list, bool] | None, n: int) -> tuple[float, float]:
    """(server CPU ms, client wall ms) per trial life, with the claim index and the `extra` one."""
    with fresh_server() as server:
        client = MongoClient(server.url, retryWrites=False)  # as the store connects
        trials = client.costs.trials
        trials.create_index([("exp_key", ASCENDING), ("state", ASCENDING), ("tid", ASCENDING)], name="claim")
        if extra:
            trials.create_index(extra[0], unique=extra[1])
        space = compile_space(SPACE)
        params = [space.to_assignment(r) for r in space.sample(np.random.default_rng(0), n)]

        def lives() -> None:
            for i in range(0, n, 8):
                docs = [{"_id": f"e:{i + k}", "exp_key": "e", "tid": i + k, "state": "NEW", "params": params[i + k],
                         "attempts": 0} for k in range(min(8, n - i))]
                trials.insert_many(docs)
                now = dt.datetime.now(dt.timezone.utc)
                for d in docs:
                    trials.update_one({"_id": d["_id"], "state": "NEW"},
                                      {"$set": {"state": "RUNNING", "owner": "w", "lease_token": "t",
                                                "lease_until": now, "claimed": now}, "$inc": {"attempts": 1}})
                for d in docs:
                    trials.update_one({"_id": d["_id"], "state": "RUNNING", "lease_token": "t"},
                                      {"$set": {"state": "DONE", "result": {"loss": 1.0, "status": "ok"},
                                                "finished": now}})

        cpu, wall = measure(server.pid, lives, 1)
        client.close()
        return cpu / n, wall / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=600)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    for _ in range(args.pairs):
        for name, extra in VARIANTS.items():
            cpu, wall = trial_lives(extra, args.trials)
            print(f"{name}: server CPU {cpu:.2f} ms per trial life, client wall {wall:.2f} ms", flush=True)


if __name__ == "__main__":
    main()
