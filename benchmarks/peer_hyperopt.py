"""Hyperopt's MongoTrials as a peer of peers.py: a driver process running TPE on MongoTrials and
K `hyperopt-mongo-worker` processes, in a virtualenv with pymongo 3.x (setup_peers.sh)."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import time
from pathlib import Path

from peer_process import PEERS, clocks, peer_env, last_json, stop_all, venv_python

HYPEROPT_VENV = os.environ.get("HYPEROPT_MONGO_VENV", "/tmp/venv-hyperopt-mongo")
# hyperopt-mongo-worker sleeps 1 + rand() * (poll_interval - 1) seconds whenever it finds no job
# (default --poll-interval 5: 1 to 5 s). Below 1 the sleep is uniform between poll_interval and 1 s,
# so no value gets the mean idle sleep under ~0.5 s (below 0 the sleep can be negative and
# time.sleep raises). 0.01 was the fastest setting measured (benchmarks/results/peers.md).
WORKER_POLL = 0.01
# fmin() polls MongoTrials every 1 s (FMinIter's poll_interval_secs; fmin() does not expose it) and
# enqueues at most max_queue_len new trials per poll. peers.py drives FMinIter directly with a
# shorter poll (the value below, see benchmarks/results/peers.md) and max_queue_len = workers + 1
# (hyperdist's coordinator keeps workers + 1 trials waiting besides the running ones, the same);
# --driver-poll 1 --fmin gives plain fmin().
DRIVER_POLL = 0.05


def _host_port(url: str) -> str:
    rest = url.split("://", 1)[-1]
    rest = rest.split("@", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0]


def start_secantus(workdir: Path) -> tuple[str, Path]:
    try:
        from hyperdist.server.embedded import start_server
    except ImportError as exc:
        raise SystemExit("peers.py: hyperopt-mongo needs --mongo URL, or hyperdist importable to start "
                         f"a local SecantusDB server ({exc})")
    data = workdir / "server"
    return start_server(data).url, data


def run_hyperopt_mongo(workers: int, trials: int, objective: str, mongo: str | None, workdir: Path,
                       venv: str = HYPEROPT_VENV, worker_poll: float = WORKER_POLL,
                       driver_poll: float = DRIVER_POLL, queue: int | None = None, use_fmin: bool = False,
                       subprocesses: bool = False, seed: int = 1, space: str = "mixed6") -> dict:
    """K fresh `hyperopt-mongo-worker` interpreters and the driver, launched together; the clock
    starts just before the workers (peer_process.clocks), completion times are the trials'
    `refresh_time`, which the worker's last checkpoint sets with the result."""
    python = venv_python(venv, "Hyperopt MongoTrials")
    own_server = None
    if mongo is None:
        mongo, own_server = start_secantus(workdir)
    try:
        hostport = _host_port(mongo)
        db = f"hyperopt_peers_{os.getpid()}_{int(time.time() * 1000)}"
        exp_key = f"{objective}_{workers}"
        wdir = workdir / db
        wdir.mkdir(parents=True, exist_ok=True)
        env = peer_env()
        worker_bin = str(Path(python).parent / "hyperopt-mongo-worker")
        wcmd = [python, worker_bin, f"--mongo={hostport}/{db}", f"--poll-interval={worker_poll}",
                f"--exp-key={exp_key}", f"--workdir={wdir}", "--reserve-timeout=600",
                "--max-consecutive-failures=1000"]
        if not subprocesses:
            wcmd.append("--no-subprocesses")
        dcmd = [python, str(PEERS), "_hyperopt-driver", "--mongo", f"{hostport}/{db}",
                "--exp-key", exp_key, "--trials", str(trials), "--objective", objective,
                "--queue", str(queue or workers + 1), "--driver-poll", str(driver_poll), "--seed", str(seed),
                "--space", space]
        if use_fmin:
            dcmd.append("--fmin")
        t0 = time.time()
        logs = [open(wdir / f"worker{i}.log", "wb") for i in range(workers)]
        procs = [subprocess.Popen(wcmd, cwd=wdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL) for log in logs]
        try:
            out = subprocess.run(dcmd, cwd=wdir, env=env, capture_output=True, text=True, timeout=3600)
        finally:
            stop_all(procs)
            for log in logs:
                log.close()
        wall = time.time() - t0
        if out.returncode != 0:
            raise RuntimeError(f"hyperopt driver failed ({out.returncode}):\n{out.stderr[-4000:]}")
        res = last_json(out.stdout)
        times = res.pop("t_end")
        res.pop("t_objective", None)
        mode = "subprocess per job" if subprocesses else "--no-subprocesses"
        notes = (f"hyperopt {res.pop('hyperopt')}, pymongo {res.pop('pymongo')} ({venv}); workers {mode}, "
                 f"--poll-interval={worker_poll}; driver "
                 + ("fmin() (polls every 1 s)" if use_fmin else f"FMinIter poll {driver_poll} s")
                 + f", max_queue_len {queue or workers + 1}; server {hostport}")
        return dict(res, **clocks(t0, times), wall_s=wall, notes=notes + "; completion times: refresh_time")
    finally:
        if own_server is not None:
            from hyperdist.server.embedded import stop_server
            stop_server(own_server)


def hyperopt_driver(args: argparse.Namespace) -> None:
    import numpy as np
    import pymongo
    import hyperopt
    from hyperopt import hp, tpe
    from hyperopt.mongoexp import MongoTrials
    import peer_objectives
    import spaces

    space = spaces.build(hp, args.space)
    fn = peer_objectives.HYPEROPT[args.objective]
    trials = MongoTrials(f"mongo://{args.mongo}/jobs", exp_key=args.exp_key)
    rstate = np.random.default_rng(args.seed)
    if args.fmin:
        hyperopt.fmin(fn, space, algo=tpe.suggest, max_evals=args.trials, trials=trials, rstate=rstate,
                      max_queue_len=args.queue, show_progressbar=False)
    else:
        # what fmin() does, with FMinIter's poll interval (not an fmin() keyword) set
        from hyperopt.base import Domain
        from hyperopt.fmin import FMinIter
        domain = Domain(fn, space)
        it = FMinIter(tpe.suggest, domain, trials, rstate, asynchronous=True, max_queue_len=args.queue,
                      poll_interval_secs=args.driver_poll, max_evals=args.trials, show_progressbar=False)
        it.exhaust()
    trials.refresh()
    utc = datetime.timezone.utc
    ok = [t["refresh_time"].replace(tzinfo=utc).timestamp() for t in trials.trials  # naive UTC (coarse_utcnow)
          if t["state"] == hyperopt.JOB_STATE_DONE and t["result"].get("status") == "ok"]
    print(json.dumps({"done": len(ok), "total": len(trials.trials), "t_end": ok,
                      "hyperopt": hyperopt.__version__, "pymongo": pymongo.version}))
