"""Peer systems for the distributed throughput benchmark (issue 7): Hyperopt MongoTrials, Optuna.

    python benchmarks/peers.py SYSTEM --workers K --trials N --objective null|sleep50 \
        [--mongo URL] [--workdir DIR]

    python benchmarks/peers.py matrix --trials 500 --repeats 3 --out benchmarks/results/peers_table.md

prints one JSON line: {"system", "workers", "trials", "objective", "trials_per_s", "steady_trials_per_s",
"done", "wall_s", "notes", ...}. From Python: `run(system, workers, trials, objective, ...)` returns
the same dict. SYSTEM:

- `hyperopt-mongo`: a driver process runs Hyperopt's TPE on
  `MongoTrials('mongo://host:port/db/jobs', exp_key=...)` and K `hyperopt-mongo-worker` processes
  evaluate, against the MongoDB-wire server at --mongo (without --mongo, a SecantusDB server is
  started in the work dir through hyperdist.server.embedded). Runs in its own virtualenv (pymongo 3.x):
  $HYPEROPT_MONGO_VENV or --hyperopt-venv, default /tmp/venv-hyperopt-mongo.
- `optuna-journal`: K processes run `study.optimize` with `TPESampler` on one study in
  `JournalStorage(JournalFileBackend(file))`.
- `optuna-postgres`: the same on `RDBStorage('postgresql+psycopg2://...')`: a fresh PostgreSQL cluster
  made with initdb in a new directory under the system temp dir, listening on 127.0.0.1 on a free
  port, run as the `postgres` account when started by root (postgres refuses root), stopped and
  removed afterwards; fsync and synchronous_commit stay on (the defaults). Binaries from $PG_BIN or /usr/lib/postgresql/*/bin.
  Both Optuna systems use $OPTUNA_PG_VENV or --optuna-venv, default /tmp/venv-optuna-pg.

`bash benchmarks/setup_peers.sh` creates both virtualenvs with pinned versions. This file (the CLI
and the measurement matrix), peer_hyperopt.py and peer_optuna.py (one peer system each) and
peer_process.py (what they share) use only the standard library at import, so any Python can run
the CLI; the library code runs in the virtualenvs through the hidden sub-commands of this file,
`_hyperopt-driver`, `_optuna-create`, `_optuna-worker` and `_optuna-collect`.

Space: the 6-parameter space of benchmarks/distributed.py (uniform, loguniform, quniform, normal,
randint, a choice with a nested lognormal) in each library's API. Objectives in
benchmarks/peer_objectives.py: `null` = a ** 2; `sleep50` = sleep 50 ms, then the same.

Clock rule (issue 21; the same as distributed.py's for hyperdist, `peer_process.clocks`): the clock
starts just before the worker interpreters are launched; `trials_per_s` is end to end, the trials
over the time to the last completion; `steady_trials_per_s` is measured between the 20% and 80%
marks of the completions; `startup_s` is the time to the first completion. Completion times are
what each storage records: Optuna's `datetime_complete`, Hyperopt's `refresh_time` (set with the
result). `wall_s` is the whole run, exits included. (Until issue 21 the clock started at the first
completion here but not for every system, see docs/performance.md.)

--space mixed6|uniform10|uniform1 (benchmarks/spaces.py; default mixed6).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from peer_hyperopt import DRIVER_POLL, HYPEROPT_VENV, WORKER_POLL, hyperopt_driver, start_secantus, run_hyperopt_mongo
from peer_optuna import OPTUNA_VENV, optuna_collect, optuna_create, optuna_worker, run_optuna

SYSTEMS = ("hyperopt-mongo", "optuna-journal", "optuna-postgres")
OBJECTIVES = ("null", "sleep50")


def _matrix_runs(args: argparse.Namespace, cells: list, runs: dict, loads: list, raw: list) -> None:
    for r in range(args.repeats):
        for system, objective, k in cells:
            opts = dict(seed=r + 1, venv=args.hyperopt_venv if system == "hyperopt-mongo" else args.optuna_venv)
            if system == "hyperopt-mongo":
                opts.update(driver_poll=args.driver_poll, worker_poll=args.worker_poll)
            res = run(system, k, args.trials, objective, args.mongo, args.workdir, **opts)
            res["repeat"] = r
            res["load1"] = os.getloadavg()[0]
            loads.append(res["load1"])
            raw.append(res)
            runs[(system, objective, k)].append(res)
            print(json.dumps(res), flush=True)


def matrix(args: argparse.Namespace) -> None:
    """Every (system, objective, workers) cell `repeats` times, interleaved (repeat r of every cell
    before repeat r + 1 of any, so load from other work hits all cells alike); median [min, max]."""
    import statistics
    cells = [(s, o, k) for o in args.objectives for s in args.systems
             for k in (args.workers if s == "hyperopt-mongo" or not args.optuna_workers else args.optuna_workers)]
    runs: dict = {c: [] for c in cells}
    loads = [os.getloadavg()[0]]
    raw = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.time()
    server_tmp = own_server = None
    if args.mongo is None and "hyperopt-mongo" in args.systems:  # one fresh SecantusDB for all cells
        server_tmp = tempfile.TemporaryDirectory(prefix="peers-server-")
        args.mongo, own_server = start_secantus(Path(server_tmp.name))
    try:
        _matrix_runs(args, cells, runs, loads, raw)
    finally:
        if own_server is not None:
            from hyperdist.server.embedded import stop_server
            stop_server(own_server)
            server_tmp.cleanup()
    total = time.time() - t0
    lines = [f"trials/s (median [min, max] over {args.repeats} interleaved repeats, {args.trials} trials per run; "
             "end to end: from launching the workers to the last completion)", "",
             "| objective | system | workers | trials/s | done (min) | wall s (median) |", "|---|---|---|---|---|---|"]
    for system, objective, k in cells:
        rs = runs[(system, objective, k)]
        v = [x["trials_per_s"] for x in rs]
        lines.append(f"| {objective} | {system} | {k} | {statistics.median(v):.1f} [{min(v):.1f}, {max(v):.1f}] | "
                     f"{min(x['done'] for x in rs)} | {statistics.median(x['wall_s'] for x in rs):.1f} |")
    lines += ["", f"1-minute load average before the run and after each cell: min {min(loads):.2f}, "
              f"median {statistics.median(loads):.2f}, max {max(loads):.2f} (nproc {os.cpu_count()}); "
              f"started {started}, total {total:.0f} s.", "",
              "Notes per system (from the last run): "]
    seen = set()
    for system, objective, k in cells:
        if system not in seen:
            seen.add(system)
            lines.append(f"- {system}: {runs[(system, objective, k)][-1]['notes']}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))

# ----------------------------------------------------------------------------- entry points

def run(system: str, workers: int, trials: int, objective: str, mongo: str | None = None,
        workdir: str | Path | None = None, **options) -> dict:
    """Run one measurement; returns the dict that the CLI prints."""
    if system not in SYSTEMS:
        raise ValueError(f"system must be one of {SYSTEMS}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="peers-")
        workdir = tmp.name
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if system == "hyperopt-mongo":
            res = run_hyperopt_mongo(workers, trials, objective, mongo, workdir, **options)
        else:
            res = run_optuna(system, workers, trials, objective, workdir, **options)
    finally:
        if tmp is not None:
            tmp.cleanup()
    out = {"system": system, "workers": workers, "trials": trials, "objective": objective}
    out.update(res)
    for key in ("trials_per_s", "steady_trials_per_s", "first_to_last_per_s", "e2e_s", "startup_s", "wall_s"):
        if key in out:
            out[key] = round(out[key], 3)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):  # internal sub-commands, run inside the peers' virtualenvs
        ap = argparse.ArgumentParser(prog=f"peers.py {argv[0]}")
        ap.add_argument("--mongo")
        ap.add_argument("--exp-key")
        ap.add_argument("--storage")
        ap.add_argument("--study")
        ap.add_argument("--trials", type=int)
        ap.add_argument("--objective", choices=OBJECTIVES)
        ap.add_argument("--queue", type=int)
        ap.add_argument("--driver-poll", type=float)
        ap.add_argument("--seed", type=int, default=1)
        ap.add_argument("--fmin", action="store_true")
        ap.add_argument("--space", default="mixed6")
        args = ap.parse_args(argv[1:])
        {"_hyperopt-driver": hyperopt_driver, "_optuna-create": optuna_create,
         "_optuna-worker": optuna_worker, "_optuna-collect": optuna_collect}[argv[0]](args)
        return
    if argv and argv[0] == "matrix":
        ap = argparse.ArgumentParser(prog="peers.py matrix", description=matrix.__doc__)
        ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
        ap.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES))
        ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
        ap.add_argument("--optuna-workers", type=int, nargs="+", help="worker counts for Optuna (default: --workers)")
        ap.add_argument("--trials", type=int, default=500)
        ap.add_argument("--repeats", type=int, default=3)
        ap.add_argument("--mongo")
        ap.add_argument("--workdir")
        ap.add_argument("--hyperopt-venv", default=HYPEROPT_VENV)
        ap.add_argument("--optuna-venv", default=OPTUNA_VENV)
        ap.add_argument("--driver-poll", type=float, default=DRIVER_POLL)
        ap.add_argument("--worker-poll", type=float, default=WORKER_POLL)
        ap.add_argument("--out", help="write the table here (and the raw runs next to it as .json)")
        matrix(ap.parse_args(argv[1:]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("system", choices=SYSTEMS)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--trials", type=int, required=True)
    ap.add_argument("--objective", choices=OBJECTIVES, required=True)
    ap.add_argument("--mongo", help="MongoDB-wire server for hyperopt-mongo (mongodb://host:port)")
    ap.add_argument("--workdir", help="directory for journal files, PostgreSQL cluster, worker logs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--space", default="mixed6", choices=("mixed6", "uniform10", "uniform1"))
    ap.add_argument("--hyperopt-venv", default=HYPEROPT_VENV)
    ap.add_argument("--optuna-venv", default=OPTUNA_VENV)
    ap.add_argument("--worker-poll", type=float, default=WORKER_POLL, help="hyperopt-mongo-worker --poll-interval")
    ap.add_argument("--driver-poll", type=float, default=DRIVER_POLL, help="seconds between the driver's polls")
    ap.add_argument("--queue", type=int, help="hyperopt max_queue_len (default: --workers + 1)")
    ap.add_argument("--fmin", action="store_true", help="hyperopt: plain fmin() (driver polls every 1 s)")
    ap.add_argument("--subprocesses", action="store_true",
                    help="hyperopt-mongo-worker's default: one new Python process per job")
    args = ap.parse_args(argv)
    if args.system == "hyperopt-mongo":
        opts = dict(venv=args.hyperopt_venv, worker_poll=args.worker_poll, driver_poll=args.driver_poll,
                    queue=args.queue, use_fmin=args.fmin, subprocesses=args.subprocesses, seed=args.seed,
                    space=args.space)
    else:
        opts = dict(venv=args.optuna_venv, seed=args.seed, space=args.space)
    print(json.dumps(run(args.system, args.workers, args.trials, args.objective, args.mongo, args.workdir, **opts)))


if __name__ == "__main__":
    main()
