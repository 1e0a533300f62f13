"""Distributed-path benchmark: throughput beside the peers on one clock, and coordinator scale.

    python benchmarks/distributed.py throughput --trials 500 --workers 4 8 --objectives null --spaces uniform10
    python benchmarks/distributed.py scale --history 1000 10000 100000

`throughput` runs `hyperdist search OBJECTIVE --space SPACE --workers K --mongo URL` as a user would
(the console script: a fresh interpreter for the coordinator and for every worker) against an
embedded SecantusDB that is already running, and in the same run, interleaved, the peers of
benchmarks/peers.py on the same machine (`--peers hyperopt-mongo optuna-journal optuna-postgres`).

One clock rule for every system (issue 21, `peer_process.clocks`), read from the completion times
each system stores (hyperdist: the trials' `finished`; Optuna: `datetime_complete`; Hyperopt:
`refresh_time`): **end to end**, from launching the workers to the last result, and **steady
state**, between the 20% and the 80% marks. For hyperdist the run also gives the start-up (launch to
the first finished trial, broken down by the stored timestamps and the workers' start times in
/proc), the server's CPU per trial, the clients' CPU (every process of the search) and the
operations the server counted (serverStatus opcounters) per trial (search_run.py runs one search).

`scale` fills an experiment with 1k/10k/100k finished trials and measures, in a fresh process
per size: resume time, resident memory, ms per suggestion, and the documents each tick reads.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

from counted import CommandCounter
from envinfo import describe
from hyperdist import hp, tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.server.embedded import start_server, stop_server
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from hyperdist.store import testing as raw
from search_run import run_search
from spaces import SPACES, build

HERE = Path(__file__).resolve().parent
SPACE = build(hp, "mixed6")  # the space of server_costs.py, index_cost.py and `scale`


def run_peer(system: str, n_workers: int, trials: int, objective: str, space: str, tmp: Path) -> dict:
    """A peer run in its own process. Hyperopt gets a fresh SecantusDB of its own (peers.py starts
    one): after a MongoTrials run, the shared server answered hyperdist's next searches 3-5x slower
    (server CPU for 500 trials 5 s -> 23-33 s), which would have charged Hyperopt's cost to us."""
    cmd = [sys.executable, str(HERE / "peers.py"), system, "--workers", str(n_workers), "--trials", str(trials),
           "--objective", objective, "--space", space,
           "--workdir", str(tmp / f"{system}-{objective}-{n_workers}-{time.time_ns()}")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"system": system, "workers": n_workers, "objective": objective, "space": space,
                "error": proc.stderr.strip()[-400:]}
    return json.loads(lines[-1]) | {"space": space}


def throughput(args: argparse.Namespace) -> None:
    """Every cell (objective, space, workers) `repeats` times; within a repeat every system runs once,
    in an order reversed every other repeat (ABBA), so load drifts from other work hit all alike."""
    rows: list[dict] = []
    args.load_before = os.getloadavg()[0]
    args.started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "server")
        try:
            for objective in args.objectives:
                for space in args.spaces:
                    for k in args.workers:
                        for rep in range(args.repeats):
                            systems = ["hyperdist"] + [f"hyperdist {v}" for v in args.variants] + [
                                p for p in args.peers if k in args.peer_workers
                                                       and rep < args.peer_repeats.get(p, args.repeats)]
                            for system in (systems if rep % 2 == 0 else systems[::-1]):
                                if system.startswith("hyperdist"):
                                    if args.fresh_server:  # the previous searches' data and uptime left behind
                                        stop_server(tmp / "server")
                                        server = start_server(tmp / "server")
                                    try:
                                        row = run_search(server, k, args.trials, objective, space, tmp,
                                                         extra=system.split()[1:])
                                    except RuntimeError as exc:  # the report says so in the cell
                                        row = {"system": system, "workers": k, "objective": objective,
                                               "space": space, "error": str(exc)[-400:]}
                                else:
                                    row = run_peer(system, k, args.trials, objective, space, tmp)
                                row.update(repeat=rep, load1=os.getloadavg()[0])  # 1-minute load after the run
                                rows.append(row)
                                print(json.dumps(row), flush=True)
        finally:
            stop_server(tmp / "server")
    Path(args.json).write_text(json.dumps(rows, indent=1))
    Path(args.out).write_text(report_throughput(rows, args))
    print(Path(args.out).read_text())


def _mmm(values: list[float], fmt: str = "{:.1f}") -> str:
    """median [min, max]"""
    if not values:
        return ""
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def report_throughput(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"`python benchmarks/distributed.py throughput {' '.join(sys.argv[2:])}`", "",
             f"Started {args.started}. {args.trials} trials per search; median [min, max] over the runs of each cell "
             "(n = runs). One clock for every system: **end to end** = trials / (last completion - launch of the "
             "workers), fresh interpreters for every process; **steady** = trials between the 20% and 80% "
             "completion marks / the time between them; both from the completion times each system stores. "
             "Ratio = hyperdist's median over the system's, same cell. 'first to last' is the clock of the "
             "earlier reports (start-up excluded), shown only for comparison.", ""]
    for objective in args.objectives:
        for space in args.spaces:
            lines += [f"### Objective `{objective}`, space `{space}`", "",
                      "| system | workers | n | end to end trials/s | hyperdist / system | steady trials/s | "
                      "hyperdist / system | start-up s (first result) | first to last trials/s | server CPU ms per "
                      "trial | clients CPU s | load1 after |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for k in args.workers:
                cell = [r for r in rows if r["objective"] == objective and r.get("space") == space
                        and r["workers"] == k]
                ours = [r for r in cell if r["system"] == "hyperdist" and "trials_per_s" in r]
                for system in ["hyperdist", *(f"hyperdist {v}" for v in args.variants), *args.peers]:
                    runs = [r for r in cell if r["system"] == system]
                    ok = [r for r in runs if "trials_per_s" in r and r.get("done") == r.get("trials", args.trials)]
                    if not runs:
                        continue
                    if not ok:
                        err = (runs[0].get("error") or f"done {runs[0].get('done')}").replace("\n", " ")[:160]
                        lines.append(f"| {system} | {k} | 0 | failed: {err} | | | | | | | | |")
                        continue
                    e2e = [r["trials_per_s"] for r in ok]
                    steady = [r["steady_trials_per_s"] for r in ok]
                    r1 = r2 = server = clients = ""
                    if system != "hyperdist" and ours:
                        r1 = f"{_median(ours, 'trials_per_s') / statistics.median(e2e):.2f}x"
                        r2 = f"{_median(ours, 'steady_trials_per_s') / statistics.median(steady):.2f}x"
                    if system.startswith("hyperdist"):
                        server = _mmm([r["server_ms_per_trial"] for r in ok], "{:.2f}")
                        clients = _mmm([r["clients_cpu_s"] for r in ok])
                    loads = [r["load1"] for r in ok]
                    lines.append(f"| {system} | {k} | {len(ok)} | {_mmm(e2e)} | {r1} | {_mmm(steady)} | {r2} | "
                                 f"{_mmm([r['startup_s'] for r in ok], '{:.2f}')} | "
                                 f"{_mmm([r['first_to_last_per_s'] for r in ok])} | {server} | {clients} | "
                                 f"{min(loads):.1f}-{max(loads):.1f} |")
            lines.append("")
    ours = [r for r in rows if r["system"] == "hyperdist" and "startup" in r]  # the default options only
    if ours:
        keys = ["experiment_created", "first_suggestions", "workers_spawned", "worker_ready_median", "first_claim"]
        lines += ["hyperdist's start-up, seconds after the launch of `hyperdist search` (median [min, max] over every "
                  "hyperdist run): the experiment created (interpreter, imports, connect), the first suggestions "
                  "stored, the workers spawned (/proc start time), a worker's own start to its first claim "
                  "(interpreter, imports, connect, experiment), the first claim, the first result:", "",
                  "| " + " | ".join(keys + ["first result"]) + " |", "|" + "---|" * (len(keys) + 1),
                  "| " + " | ".join(_mmm([r["startup"][k] for r in ours if r["startup"].get(k) is not None], "{:.2f}")
                                    for k in keys) + f" | {_mmm([r['startup_s'] for r in ours], '{:.2f}')} |", ""]
        for k in args.workers:  # what a user waits for after the last result (issue 21: workers stopped at once)
            tails = [r["wall_s"] - r["e2e_s"] for r in ours if r["workers"] == k and "e2e_s" in r]
            if tails:
                lines.append(f"`hyperdist search` with {k} workers exited {_mmm(tails, '{:.2f}')} s after its last "
                             "result (the process's exit less the last completion).")
        lines.append("")
        ops: dict[str, list[float]] = {}
        for r in ours:
            for name, v in r["ops_per_trial"].items():
                ops.setdefault(name, []).append(v)
        lines += ["Server operations per trial in hyperdist's runs (serverStatus opcounters, median over runs; "
                  "`insert` counts documents, `update` statements, `query` finds): "
                  + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(ops.items())) + ".", ""]
    notes = {r["system"]: r.get("notes") for r in rows if r.get("notes")}
    lines += [f"- {system}: {note}" for system, note in notes.items()]
    loads = [r["load1"] for r in rows if "load1" in r]
    if loads:
        lines += ["", f"1-minute load average before the run {args.load_before:.2f}; after each run: min {min(loads):.2f}, "
                      f"median {statistics.median(loads):.2f}, max {max(loads):.2f} (nproc {os.cpu_count()})."]
    lines += ["", describe()]
    return "\n".join(lines) + "\n"


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


# --- coordinator scale ---------------------------------------------------------------------------
def fill(url: str, db: str, history: int) -> None:
    """An experiment with `history` finished trials, written directly in large batches."""
    import numpy as np

    store = Store(url, db=db)
    space = compile_space(SPACE)
    store.create_experiment("scale", space=space.to_json(), space_hash=space.hash, objective=None,
                            algo={"name": "tpe"}, max_evals=history + 1000, seed=5)
    rng = np.random.default_rng(0)
    rows = space.sample(rng, history)
    store.reserve_tids("scale", history)
    batch = []
    for tid, row in enumerate(rows):
        params = space.to_assignment(row)
        batch.append({"exp_key": "scale", "tid": tid, "state": "DONE", "params": params, "attempts": 1,
                      "result": {"loss": float(rng.normal()), "status": "ok", "extra": "x" * 100},
                      "owner": "filler", "created": None, "claimed": None, "finished": None, "error": None})
        if len(batch) == 5000:
            raw.trials(store).insert_many(batch)
            batch = []
    if batch:
        raw.trials(store).insert_many(batch)
    store.close()


def measure_scale(url: str, db: str, ticks: int, mode: str) -> dict:
    """Runs in a fresh process: resume, then ticks that each see one trial finish and enqueue one.
    mode "full": the snapshot is deleted first, so the resume reads every trial and its first tick
    writes a new snapshot (timed); "snapshot": the resume reads that snapshot."""
    import resource

    counter = CommandCounter()
    store = Store(url, db=db, event_listeners=[counter])
    if mode == "full":
        store.delete_snapshot("scale")
    space = compile_space(SPACE)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    coord = Coordinator(store, "scale", space, tpe.suggest, StopRules(10**9), CoordinatorConfig(workers=1, queue=0))
    t0 = time.perf_counter()
    coord.start(resume=True)
    resume_s = time.perf_counter() - t0
    docs_read = sum(counter.returned.values())
    t0 = time.perf_counter()
    coord.tick()
    first_tick_s = time.perf_counter() - t0
    times, returned, commands = [], [], []
    finisher = MongoClient(url)[db]["trials"]
    for i in range(ticks):
        for key in list(coord.open):  # one trial finishes between ticks, as a worker would report it
            finisher.update_one({"_id": key}, {"$set": {"state": "DONE", "result": {"loss": 1.0 + i, "status": "ok"}}})
        before, docs_before = sum(counter.counts.values()), dict(counter.returned)
        t = time.perf_counter()
        coord.tick()
        times.append(1000 * (time.perf_counter() - t))
        commands.append(sum(counter.counts.values()) - before)
        returned.append(sum(counter.returned.values()) - sum(docs_before.values()))
    return {"mode": mode, "history": coord.finished, "resume_s": resume_s, "resume_docs_read": docs_read,
            "first_tick_s": first_tick_s, "ms_per_suggestion": statistics.median(times),
            "ms_p90": sorted(times)[int(0.9 * len(times))], "commands_per_tick": statistics.median(commands),
            "docs_read_per_tick": statistics.median(returned), "max_docs_read_per_tick": max(returned),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_resume_mb": rss0 / 1024}


def scale(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "server")
        try:
            for history in args.history:
                db = f"scale_{history}"
                t = time.perf_counter()
                fill(server.url, db, history)
                print(f"filled {history} trials in {time.perf_counter() - t:.1f} s", flush=True)
                for _ in range(args.repeats):
                    for mode in ("full", "snapshot"):
                        proc = subprocess.run([sys.executable, __file__, "_measure", server.url, db, str(args.ticks),
                                               mode], stdout=subprocess.PIPE, text=True, check=True,
                                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
                        rows.append(json.loads(proc.stdout.splitlines()[-1]) | {"filled": history})
                        print(json.dumps(rows[-1]), flush=True)
        finally:
            stop_server(tmp / "server")
    lines = [f"`python benchmarks/distributed.py scale {' '.join(sys.argv[2:])}`", "",
             f"Median over {args.repeats} pairs of fresh coordinator processes per size, run in turn: one resumes "
             "with the snapshot deleted (it reads every trial, and its first tick writes a new snapshot), the "
             f"other from that snapshot. Each then runs {args.ticks} ticks in each of which one trial has finished "
             "and one suggestion is enqueued.", "",
             "| finished trials | resume from | resume s (min-max) | documents read by the resume | first tick s | "
             "ms per suggestion (tick, median) | p90 | commands per tick | documents read per tick (max) | "
             "coordinator RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for history in args.history:
        for mode in ("full", "snapshot"):
            rs = [r for r in rows if r["filled"] == history and r["mode"] == mode]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], (int, float))}
            lines.append(
                f"| {history} | {'every trial' if mode == 'full' else 'snapshot'} | {med['resume_s']:.2f} "
                f"({min(r['resume_s'] for r in rs):.2f}-{max(r['resume_s'] for r in rs):.2f}) | "
                f"{med['resume_docs_read']:g} | {med['first_tick_s']:.2f} | {med['ms_per_suggestion']:.1f} | "
                f"{med['ms_p90']:.1f} | {med['commands_per_tick']:g} | {med['docs_read_per_tick']:g} "
                f"({max(r['max_docs_read_per_tick'] for r in rs)}) | {med['rss_mb']:.0f} |")
    lines += ["", describe()]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(Path(args.out).read_text())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        print(json.dumps(measure_scale(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])))
        return
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--trials", type=int, default=500)
    tp.add_argument("--workers", type=int, nargs="+", default=[4, 8])
    tp.add_argument("--objectives", nargs="+", default=["null"], choices=["null", "sleep50"])
    tp.add_argument("--spaces", nargs="+", default=["uniform10"], choices=SPACES)
    tp.add_argument("--repeats", type=int, default=3)
    tp.add_argument("--queues", type=int, nargs="*", default=[], metavar="Q",
                    help="also run hyperdist with `--queue Q`, each as one more system")
    tp.add_argument("--peers", nargs="*", default=["hyperopt-mongo", "optuna-journal", "optuna-postgres"])
    tp.add_argument("--fresh-server", action="store_true",
                    help="a new embedded server (started before the clock) for every hyperdist run")
    tp.add_argument("--peer-workers", type=int, nargs="+", default=[4, 8], help="worker counts at which peers run")
    tp.add_argument("--hyperopt-repeats", type=int, default=1,
                    help="runs of Hyperopt per cell (2-6 minutes each at 500 trials)")
    tp.add_argument("--out", default=str(HERE / "results" / "distributed.md"))
    tp.add_argument("--json", default=str(HERE / "results" / "distributed.json"))
    sc = sub.add_parser("scale")
    sc.add_argument("--history", type=int, nargs="+", default=[1000, 10000, 100000])
    sc.add_argument("--repeats", type=int, default=3)
    sc.add_argument("--ticks", type=int, default=20)
    sc.add_argument("--out", default=str(HERE / "results" / "scale.md"))
    args = ap.parse_args()
    if args.what == "throughput":
        args.variants = [f"--queue {q}" for q in args.queues]
        args.peer_repeats = {"hyperopt-mongo": args.hyperopt_repeats}
    {"throughput": throughput, "scale": scale}[args.what](args)


if __name__ == "__main__":
    main()
