"""Distributed-path benchmark: throughput, database round trips per trial, coordinator cost.

    python benchmarks/distributed.py --trials 300 --workers 1 2 4
    python benchmarks/distributed.py --round-trips-only

1. Trials per second with a null objective and 1, 2, 4 worker processes on the embedded server
   (SecantusDB, started fresh in a temp dir), coordinator in this process.
2. Database commands per trial in steady state, counted with pymongo command monitoring on the
   coordinator's and one in-process worker's clients.
3. Coordinator milliseconds per suggestion (one tick that enqueues one trial) with 1 000 and
   10 000 finished trials in the history.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pymongo import MongoClient, monitoring

from hyperdist import hp, tpe
from hyperdist.coordinator import Coordinator, StopRules
from hyperdist.launcher import stop_workers
from hyperdist.server import start_server, stop_server
from hyperdist.space import compile_space
from hyperdist.store import Store
from hyperdist.worker import Worker, WorkerConfig

HERE = Path(__file__).resolve().parent
SPACE = {
    "a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -8, 0), "c": hp.quniform("c", 0, 100, 5),
    "d": hp.normal("d", 0, 2), "e": hp.randint("e", 10),
    "m": hp.choice("m", [{"k": "lin"}, {"k": "rbf", "g": hp.lognormal("g", 0, 1)}]),
}
OBJECTIVE = f"{HERE / 'null_objective.py'}:objective"


class Counter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self.lock:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def throughput(url: str, n_workers: int, trials: int) -> float:
    db = f"bench_tp_{n_workers}_{int(time.time())}"
    store = Store(url, db=db)
    coord = Coordinator(store, "tp", compile_space(SPACE), tpe.suggest, StopRules(trials), seed=1,
                        workers=n_workers, objective=OBJECTIVE, poll_interval=0.01)
    coord.start()
    cmd = [sys.executable, "-m", "hyperdist", "worker", "--mongo", url, "--db", db, "--exp", "tp",
           "--allow", str(HERE / "null_objective.py"), "--idle-timeout", "30"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n_workers)]
    # time from the first finished trial, so that interpreter start-up is not counted
    while store.counts("tp")["DONE"] == 0:
        coord.tick()
        time.sleep(0.01)
    t0, done0 = time.perf_counter(), coord.finished
    coord.run()
    elapsed = time.perf_counter() - t0
    stop_workers(procs)
    store.close()
    return (coord.finished - done0) / elapsed


def round_trips(url: str, trials: int = 200) -> dict[str, float]:
    db = f"bench_rt_{int(time.time())}"
    c_listener, w_listener = Counter(), Counter()
    c_store = Store(url, db=db, client=MongoClient(url, event_listeners=[c_listener], tz_aware=True))
    w_store = Store(url, db=db, client=MongoClient(url, event_listeners=[w_listener], tz_aware=True))
    coord = Coordinator(c_store, "rt", compile_space(SPACE), tpe.suggest, StopRules(trials), seed=2,
                        workers=1, objective=OBJECTIVE, poll_interval=0.002)
    coord.start()
    worker = Worker(w_store, WorkerConfig(allow=[str(HERE / "null_objective.py")], exp_key="rt",
                                          idle_timeout=10, poll_interval=0.002))
    thread = threading.Thread(target=worker.run, daemon=True)
    base_c, base_w = sum(c_listener.counts.values()), sum(w_listener.counts.values())
    thread.start()
    coord.run()
    thread.join(30)
    n = coord.finished
    out = {
        "coordinator": (sum(c_listener.counts.values()) - base_c) / n,
        "worker": (sum(w_listener.counts.values()) - base_w) / n,
    }
    out["total"] = out["coordinator"] + out["worker"]
    out["detail_worker"] = dict(w_listener.counts)
    out["detail_coordinator"] = dict(c_listener.counts)
    return out


def coordinator_cost(url: str, history: int, repeats: int = 15) -> float:
    """ms for one tick that reads changes and enqueues one suggestion, with `history` finished trials."""
    db = f"bench_cc_{history}_{int(time.time())}"
    store = Store(url, db=db)
    space = compile_space(SPACE)
    seed_coord = Coordinator(store, "cc", space, tpe.suggest, StopRules(history + 10 * repeats), seed=3,
                             workers=1, queue=0, objective=OBJECTIVE)
    seed_coord.start()
    rows = compile_space(SPACE).sample(__import__("numpy").random.default_rng(0), history)
    store.insert_trials("cc", [(i, space.to_assignment(r)) for i, r in enumerate(rows)])
    store.reserve_tids("cc", history)
    store._trials.update_many({"exp_key": "cc"}, {"$set": {"state": "DONE", "result": {"loss": 1.0, "status": "ok"}}})
    store.release_coordinator("cc", seed_coord.owner)
    coord = Coordinator(store, "cc", space, tpe.suggest, StopRules(history + 10 * repeats), seed=3,
                        workers=1, queue=0, objective=OBJECTIVE)
    t0 = time.perf_counter()
    coord.start(resume=True)
    resume_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        for key in list(coord.open):  # finish the open trial out of band, as a worker would
            store._trials.update_one({"_id": key}, {"$set": {"state": "DONE", "result": {"loss": 2.0, "status": "ok"}}})
        t = time.perf_counter()
        coord.tick()
        times.append(time.perf_counter() - t)
    store.close()
    print(f"  history {history}: resume {resume_s:.2f} s")
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--history", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--round-trips-only", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            rt = round_trips(server.url)
            print(f"database commands per trial: coordinator {rt['coordinator']:.2f}, worker {rt['worker']:.2f}, "
                  f"total {rt['total']:.2f}")
            print(f"  worker commands: {rt['detail_worker']}")
            print(f"  coordinator commands: {rt['detail_coordinator']}")
            if args.round_trips_only:
                return
            print("| workers | trials/s (median) | min | max |")
            print("|---|---|---|---|")
            for k in args.workers:
                runs = [throughput(server.url, k, args.trials) for _ in range(args.repeats)]
                print(f"| {k} | {statistics.median(runs):.1f} | {min(runs):.1f} | {max(runs):.1f} |")
            print("| history | coordinator ms per suggestion (median of 15 ticks) |")
            print("|---|---|")
            for h in args.history:
                print(f"| {h} | {coordinator_cost(server.url, h):.1f} |")
        finally:
            stop_server(Path(tmp))


if __name__ == "__main__":
    main()
