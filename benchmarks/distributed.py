"""Distributed-path benchmark: throughput beside the peers, round trips per trial, coordinator scale.

    python benchmarks/distributed.py throughput --trials 500 --workers 1 2 4 8 --objectives null sleep50
    python benchmarks/distributed.py scale --history 1000 10000 100000

`throughput` runs hyperdist (coordinator in this process, `hyperdist worker` processes) on a fresh
embedded SecantusDB and, in the same run, the peers of benchmarks/peers.py on the same machine
(`--peers hyperopt-mongo optuna-journal optuna-postgres`). Every MongoDB command of the
coordinator and of each worker is counted with pymongo command monitoring (workers run under
counted.py), and the server's and the clients' CPU seconds are read from /proc, so a row shows
whether the server or hyperdist's own code is the bottleneck.

`scale` fills an experiment with 1k/10k/100k finished trials and measures, in a fresh process
per size: resume time, resident memory, ms per suggestion, and the documents each tick reads.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
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
from hyperdist.coordinator import Coordinator, Progress, StopRules
from hyperdist.launcher import stop_workers
from hyperdist.server import LocalServer, start_server, stop_server
from hyperdist.space import compile_space
from hyperdist.store import Store

HERE = Path(__file__).resolve().parent
SPACE = {
    "a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -8, 0), "c": hp.quniform("c", 0, 100, 5),
    "d": hp.normal("d", 0, 2), "e": hp.randint("e", 10),
    "m": hp.choice("m", [{"k": "lin"}, {"k": "rbf", "g": hp.lognormal("g", 0, 1)}]),
}
OBJECTIVES = HERE / "objectives.py"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_hyperdist(server: LocalServer, n_workers: int, trials: int, objective: str, tmp: Path) -> dict:
    """One search; the clock starts at the first finished trial so that interpreter start-up is not counted."""
    db = f"bench_{objective}_{n_workers}_{time.time_ns()}"
    counter = CommandCounter()
    store = Store(server.url, db=db, event_listeners=[counter])
    coord = Coordinator(store, "tp", compile_space(SPACE), tpe.suggest, StopRules(trials), seed=1,
                        workers=n_workers, objective=f"{OBJECTIVES}:{objective}")
    coord.start()
    outs = [tmp / f"{db}-w{i}.json" for i in range(n_workers)]
    procs = [subprocess.Popen([sys.executable, str(HERE / "counted.py"), str(out), "worker", "--mongo", server.url,
                               "--db", db, "--exp", "tp", "--allow", str(OBJECTIVES), "--idle-timeout", "60"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for out in outs]
    while coord.finished == 0:
        coord.tick()
        time.sleep(coord.pacing.poll_interval)
    t0, done0 = time.perf_counter(), coord.finished
    cpu0 = {"server": cpu_seconds(server.pid), "coordinator": time.process_time(),
            "workers": sum(cpu_seconds(p.pid) for p in procs)}
    marks: list[dict] = []  # the steady state: from 20% to 80% of the trials finished

    def mark(progress: Progress) -> None:
        if len(marks) < 2 and progress.finished >= (0.2, 0.8)[len(marks)] * trials:
            for p in procs:
                p.send_signal(signal.SIGUSR1)
            marks.append({"t": time.perf_counter(), "finished": progress.finished,
                          "coordinator": sum(counter.counts.values())})

    coord.run(on_progress=mark)
    elapsed = time.perf_counter() - t0
    cpu1 = {"server": cpu_seconds(server.pid), "coordinator": time.process_time()}
    stop_workers(procs, timeout=30)
    worker_reports = [json.loads(out.read_text()) for out in outs if out.exists()]
    cpu1["workers"] = sum(r["cpu_s"] for r in worker_reports)
    commands: dict[str, int] = {}
    shapes: dict[str, int] = {}
    for r in worker_reports:
        for name, n in r["commands"].items():
            commands[name] = commands.get(name, 0) + n
        for name, n in r["shapes"].items():
            shapes[name] = shapes.get(name, 0) + n
    finished = coord.finished
    steady = _steady_state(marks, outs)
    store.delete_experiment("tp")
    store._client.drop_database(db)  # emptied first: SecantusDB drops an empty collection in ms
    store.close()
    worker_total, coord_total = sum(commands.values()), sum(counter.counts.values())
    return {
        "system": "hyperdist", "workers": n_workers, "objective": objective, "trials": finished,
        "trials_per_s": (finished - done0) / elapsed,
        "commands_per_trial": (worker_total + coord_total) / finished,
        "worker_commands_per_trial": worker_total / finished,
        "coordinator_commands_per_trial": coord_total / finished,
        "worker_commands": commands, "coordinator_commands": dict(counter.counts),
        "worker_shapes": shapes, "coordinator_shapes": dict(counter.shapes),
        "cpu_s": {k: cpu1[k] - cpu0[k] for k in cpu0}, "seconds": elapsed, **steady,
        "complete_worker_reports": len(worker_reports) == n_workers,
    }


def _read_snapshot(path: Path) -> dict | None:
    """A worker's SIGUSR1 snapshot, or None when it is missing or unreadable (the run then reports no
    steady state instead of failing: one run of 8 workers once left an empty snapshot file)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _steady_state(marks: list[dict], outs: list[Path]) -> dict:
    """Commands per trial and trials/s between the two marks, from the workers' snapshots."""
    snaps = [[snap for out in outs if (snap := _read_snapshot(Path(f"{out}.{k}"))) is not None] for k in (1, 2)]
    if len(marks) < 2 or len(snaps[0]) != len(outs) or len(snaps[1]) != len(outs):
        return {}
    trials = marks[1]["finished"] - marks[0]["finished"]
    worker = sum(sum(s["commands"].values()) for s in snaps[1]) - sum(sum(s["commands"].values()) for s in snaps[0])
    coordinator = marks[1]["coordinator"] - marks[0]["coordinator"]
    shapes: dict[str, int] = {}
    for k, sign in ((1, 1), (0, -1)):
        for s in snaps[k]:
            for name, n in s["shapes"].items():
                shapes[name] = shapes.get(name, 0) + sign * n
    return {"steady_worker_shapes": {k: v for k, v in shapes.items() if v},"steady_trials_per_s": trials / (marks[1]["t"] - marks[0]["t"]),
            "steady_commands_per_trial": (worker + coordinator) / trials,
            "steady_worker_commands_per_trial": worker / trials,
            "steady_coordinator_commands_per_trial": coordinator / trials}


def run_peer(system: str, n_workers: int, trials: int, objective: str, tmp: Path) -> dict:
    """A peer run in its own process. Hyperopt gets a fresh SecantusDB of its own (peers.py starts
    one): after a MongoTrials run, the shared server answered hyperdist's next searches 3-5x slower
    (server CPU for 500 trials 5 s -> 23-33 s), which would have charged Hyperopt's cost to us."""
    cmd = [sys.executable, str(HERE / "peers.py"), system, "--workers", str(n_workers), "--trials", str(trials),
           "--objective", objective, "--workdir", str(tmp / f"{system}-{objective}-{n_workers}-{time.time_ns()}")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"system": system, "workers": n_workers, "objective": objective, "error": proc.stderr.strip()[-400:]}
    return json.loads(lines[-1])


def throughput(args: argparse.Namespace) -> None:
    rows: list[dict] = []
    args.load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp / "server")
        try:
            for objective in args.objectives:
                for k in args.workers:
                    for rep in range(args.repeats):  # systems interleaved within a repeat, so load drifts hit all
                        if args.fresh_server:  # SecantusDB slowed with its uptime (retryable writes, docs/performance.md)
                            stop_server(tmp / "server")
                            server = start_server(tmp / "server")
                        rows.append(run_hyperdist(server, k, args.trials, objective, tmp))
                        rows[-1]["load1"] = os.getloadavg()[0]  # 1-minute load after the run (shared cores)
                        print(json.dumps(rows[-1]), flush=True)
                        for system in args.peers:
                            if k not in args.peer_workers or rep >= args.peer_repeats.get(system, args.repeats):
                                continue
                            rows.append(run_peer(system, k, args.trials, objective, tmp))
                            rows[-1]["load1"] = os.getloadavg()[0]
                            print(json.dumps(rows[-1]), flush=True)
        finally:
            stop_server(tmp / "server")
    Path(args.json).write_text(json.dumps(rows, indent=1))
    Path(args.out).write_text(report_throughput(rows, args))
    print(Path(args.out).read_text())


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report_throughput(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"`python benchmarks/distributed.py throughput {' '.join(sys.argv[2:])}`", "",
             f"{args.trials} trials per search, median of the runs per cell (hyperdist {args.repeats}; peers as "
             "min/max show); 'hyperdist / system' = hyperdist's median trials/s over the peer's in the same cell. "
             "trials/s counts from the first finished trial to the last (start-up excluded), for every system. "
             "Steady state = between 20% and 80% of the trials finished (workers' counters snapshotted by "
             "SIGUSR1); 'whole run' includes start-up and the tail, when idle workers poll an empty queue.", ""]
    for objective in args.objectives:
        lines += [f"### Objective `{objective}`", "",
                  "| system | workers | trials/s (median) | min | max | hyperdist / system | commands per trial, "
                  "steady state (worker + coordinator) | whole run | CPU s: server / workers / coordinator | "
                  "load1 after (min-max) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for k in args.workers:
            cell = [r for r in rows if r["objective"] == objective and r["workers"] == k]
            ours = [r for r in cell if r["system"] == "hyperdist"]
            base = _median(ours, "trials_per_s")
            for system in ["hyperdist", *args.peers]:
                runs = [r for r in cell if r["system"] == system]
                if not runs:
                    continue
                ok = [r for r in runs if "trials_per_s" in r]
                if not ok:
                    lines.append(f"| {system} | {k} | failed: {runs[0].get('error', '?')[:120]} | | | | | | | |")
                    continue
                tps = [r["trials_per_s"] for r in ok]
                med = statistics.median(tps)
                ratio = "" if system == "hyperdist" else f"{base / med:.1f}x"
                cmds = whole = cpu = ""
                if system == "hyperdist":
                    steady = [r for r in ok if "steady_commands_per_trial" in r]
                    if steady:
                        cmds = (f"{_median(steady, 'steady_commands_per_trial'):.2f} "
                                f"({_median(steady, 'steady_worker_commands_per_trial'):.2f} + "
                                f"{_median(steady, 'steady_coordinator_commands_per_trial'):.2f})")
                    whole = f"{_median(ok, 'commands_per_trial'):.2f}"
                    cpu = " / ".join(f"{statistics.median(r['cpu_s'][p] for r in ok):.1f}"
                                     for p in ("server", "workers", "coordinator"))
                loads = [r["load1"] for r in ok if "load1" in r]
                load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else ""
                lines.append(f"| {system} | {k} | {med:.1f} | {min(tps):.1f} | {max(tps):.1f} | {ratio} | {cmds} | {whole} "
                             f"| {cpu} | {load} |")
        lines.append("")
    example = next((r for r in rows if r["system"] == "hyperdist" and r["workers"] == max(args.workers)), None)
    if example:
        lines += [f"Commands of one hyperdist run ({example['objective']}, {example['workers']} workers, "
                  f"{example['trials']} trials): workers {example['worker_commands']}, coordinator "
                  f"{example['coordinator_commands']}.", ""]
    notes = {r["system"]: r.get("notes") for r in rows if r.get("notes")}
    lines += [f"- {system}: {note}" for system, note in notes.items()]
    loads = [r["load1"] for r in rows if "load1" in r]
    if loads:
        lines += ["", f"1-minute load average before the run {args.load_before:.2f}; after each run: min {min(loads):.2f}, "
                      f"median {statistics.median(loads):.2f}, max {max(loads):.2f} (nproc {os.cpu_count()})."]
    lines += ["", describe()]
    return "\n".join(lines) + "\n"


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
            store._trials.insert_many(batch)
            batch = []
    if batch:
        store._trials.insert_many(batch)
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
    coord = Coordinator(store, "scale", space, tpe.suggest, StopRules(10**9), workers=1, queue=0)
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
    tp.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    tp.add_argument("--objectives", nargs="+", default=["null", "sleep50"], choices=["null", "sleep50"])
    tp.add_argument("--repeats", type=int, default=3)
    tp.add_argument("--peers", nargs="*", default=["hyperopt-mongo", "optuna-journal", "optuna-postgres"])
    tp.add_argument("--fresh-server", action="store_true", help="a new embedded server for every hyperdist run")
    tp.add_argument("--peer-workers", type=int, nargs="+", default=[4], help="worker counts at which peers run")
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
        args.peer_repeats = {"hyperopt-mongo": args.hyperopt_repeats}
    {"throughput": throughput, "scale": scale}[args.what](args)


if __name__ == "__main__":
    main()
