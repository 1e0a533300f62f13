"""Peer systems for the distributed throughput benchmark (issue 7): Hyperopt MongoTrials, Optuna.

    python benchmarks/peers.py SYSTEM --workers K --trials N --objective null|sleep50 \
        [--mongo URL] [--workdir DIR]

    python benchmarks/peers.py matrix --trials 500 --repeats 3 --out benchmarks/results/peers_table.md

prints one JSON line: {"system", "workers", "trials", "objective", "seconds", "trials_per_s",
"done", "wall_s", "notes", ...}. From Python: `run(system, workers, trials, objective, ...)` returns
the same dict. SYSTEM:

- `hyperopt-mongo`: a driver process runs Hyperopt's TPE on
  `MongoTrials('mongo://host:port/db/jobs', exp_key=...)` and K `hyperopt-mongo-worker` processes
  evaluate, against the MongoDB-wire server at --mongo (without --mongo, a SecantusDB server is
  started in the work dir through hyperdist.server). Runs in its own virtualenv (pymongo 3.x):
  $HYPEROPT_MONGO_VENV or --hyperopt-venv, default /tmp/venv-hyperopt-mongo.
- `optuna-journal`: K processes run `study.optimize` with `TPESampler` on one study in
  `JournalStorage(JournalFileBackend(file))`.
- `optuna-postgres`: the same on `RDBStorage('postgresql+psycopg2://...')`: a fresh PostgreSQL cluster
  made with initdb in a new directory under the system temp dir, listening on 127.0.0.1 on a free
  port, run as the `postgres` account when started by root (postgres refuses root), stopped and
  removed afterwards; fsync and synchronous_commit stay on (the defaults). Binaries from $PG_BIN or /usr/lib/postgresql/*/bin.
  Both Optuna systems use $OPTUNA_PG_VENV or --optuna-venv, default /tmp/venv-optuna-pg.

`bash benchmarks/setup_peers.sh` creates both virtualenvs with pinned versions. This file itself
uses only the standard library, so any Python can run the CLI; the library code runs in the
virtualenvs through the hidden sub-commands `_hyperopt-driver`, `_optuna-create`, `_optuna-worker`
and `_optuna-collect`.

Space: the 6-parameter space of benchmarks/distributed.py (uniform, loguniform, quniform, normal,
randint, a choice with a nested lognormal) in each library's API. Objectives in
benchmarks/peer_objectives.py: `null` = a ** 2; `sleep50` = sleep 50 ms, then the same.

Timing rule (the same as distributed.py's for hyperdist): the clock starts when the first trial
finishes and stops when the last one finishes, so interpreter start-up, imports and connecting are
not counted; trials_per_s = (done - 1) / (t_last - t_first), from the completion time of every ok
trial (Optuna: `datetime_complete` in the storage; Hyperopt: `t_end` that the objective puts in its
result, because MongoTrials stores no completion time). `wall_s` is the whole run, start-up
included, for reference.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEMS = ("hyperopt-mongo", "optuna-journal", "optuna-postgres")
OBJECTIVES = ("null", "sleep50")
HYPEROPT_VENV = os.environ.get("HYPEROPT_MONGO_VENV", "/tmp/venv-hyperopt-mongo")
OPTUNA_VENV = os.environ.get("OPTUNA_PG_VENV", "/tmp/venv-optuna-pg")
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


def _venv_python(venv: str, what: str) -> str:
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"peers.py: no virtualenv for {what} at {venv} ({python} missing). "
                         f"Create it with: bash {HERE / 'setup_peers.sh'}  (or point "
                         f"{'HYPEROPT_MONGO_VENV' if 'yperopt' in what else 'OPTUNA_PG_VENV'} at one)")
    return str(python)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rate(times: list[float]) -> tuple[float, float]:
    """(seconds from first to last completion, trials per second after the first)."""
    times = sorted(times)
    if len(times) < 2:
        return 0.0, 0.0
    span = times[-1] - times[0]
    return span, (len(times) - 1) / span if span > 0 else float("inf")


def _stop(procs: list[subprocess.Popen], timeout: float = 10) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON result in output:\n{text[-3000:]}")


# ----------------------------------------------------------------------------- hyperopt-mongo

def _host_port(url: str) -> str:
    rest = url.split("://", 1)[-1]
    rest = rest.split("@", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0]


def _start_secantus(workdir: Path) -> tuple[str, Path]:
    try:
        from hyperdist.server import start_server
    except ImportError as exc:
        raise SystemExit("peers.py: hyperopt-mongo needs --mongo URL, or hyperdist importable to start "
                         f"a local SecantusDB server ({exc})")
    data = workdir / "server"
    return start_server(data).url, data


def run_hyperopt_mongo(workers: int, trials: int, objective: str, mongo: str | None, workdir: Path,
                       venv: str = HYPEROPT_VENV, worker_poll: float = WORKER_POLL,
                       driver_poll: float = DRIVER_POLL, queue: int | None = None, use_fmin: bool = False,
                       subprocesses: bool = False, seed: int = 1) -> dict:
    python = _venv_python(venv, "Hyperopt MongoTrials")
    own_server = None
    if mongo is None:
        mongo, own_server = _start_secantus(workdir)
    try:
        hostport = _host_port(mongo)
        db = f"hyperopt_peers_{os.getpid()}_{int(time.time() * 1000)}"
        exp_key = f"{objective}_{workers}"
        wdir = workdir / db
        wdir.mkdir(parents=True, exist_ok=True)
        env = _env()
        worker_bin = str(Path(python).parent / "hyperopt-mongo-worker")
        wcmd = [python, worker_bin, f"--mongo={hostport}/{db}", f"--poll-interval={worker_poll}",
                f"--exp-key={exp_key}", f"--workdir={wdir}", "--reserve-timeout=600",
                "--max-consecutive-failures=1000"]
        if not subprocesses:
            wcmd.append("--no-subprocesses")
        dcmd = [python, str(Path(__file__).resolve()), "_hyperopt-driver", "--mongo", f"{hostport}/{db}",
                "--exp-key", exp_key, "--trials", str(trials), "--objective", objective,
                "--queue", str(queue or workers + 1), "--driver-poll", str(driver_poll), "--seed", str(seed)]
        if use_fmin:
            dcmd.append("--fmin")
        t0 = time.time()
        logs = [open(wdir / f"worker{i}.log", "wb") for i in range(workers)]
        procs = [subprocess.Popen(wcmd, cwd=wdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL) for log in logs]
        try:
            out = subprocess.run(dcmd, cwd=wdir, env=env, capture_output=True, text=True, timeout=3600)
        finally:
            _stop(procs)
            for log in logs:
                log.close()
        wall = time.time() - t0
        if out.returncode != 0:
            raise RuntimeError(f"hyperopt driver failed ({out.returncode}):\n{out.stderr[-4000:]}")
        res = _last_json(out.stdout)
        span, rate = _rate(res.pop("t_end"))
        mode = "subprocess per job" if subprocesses else "--no-subprocesses"
        notes = (f"hyperopt {res.pop('hyperopt')}, pymongo {res.pop('pymongo')} ({venv}); workers {mode}, "
                 f"--poll-interval={worker_poll}; driver "
                 + ("fmin() (polls every 1 s)" if use_fmin else f"FMinIter poll {driver_poll} s")
                 + f", max_queue_len {queue or workers + 1}; server {hostport}")
        return dict(res, seconds=span, trials_per_s=rate, wall_s=wall, notes=notes)
    finally:
        if own_server is not None:
            from hyperdist.server import stop_server
            stop_server(own_server)


def _hyperopt_driver(args: argparse.Namespace) -> None:
    import numpy as np
    import pymongo
    import hyperopt
    from hyperopt import hp, tpe
    from hyperopt.mongoexp import MongoTrials
    import peer_objectives

    space = {
        "a": hp.uniform("a", -5, 5), "b": hp.loguniform("b", -8, 0), "c": hp.quniform("c", 0, 100, 5),
        "d": hp.normal("d", 0, 2), "e": hp.randint("e", 10),
        "m": hp.choice("m", [{"k": "lin"}, {"k": "rbf", "g": hp.lognormal("g", 0, 1)}]),
    }
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
    ok = [t["result"]["t_end"] for t in trials.trials
          if t["state"] == hyperopt.JOB_STATE_DONE and t["result"].get("status") == "ok"]
    print(json.dumps({"done": len(ok), "total": len(trials.trials), "t_end": ok,
                      "hyperopt": hyperopt.__version__, "pymongo": pymongo.version}))


# ----------------------------------------------------------------------------- optuna

def _pg_bin() -> Path:
    cands = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else sorted(glob.glob("/usr/lib/postgresql/*/bin"))[::-1]
    for c in cands:
        if (Path(c) / "initdb").exists():
            return Path(c)
    raise SystemExit("peers.py: no PostgreSQL (initdb) found: apt-get install postgresql-15, or set PG_BIN")


class Postgres:
    """A throwaway PostgreSQL cluster in `root`, on 127.0.0.1:<free port>, trust authentication."""

    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.root = root
        self.data = root / "pgdata"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:  # postgres refuses to run as root: use the postgres (or nobody) account
            import pwd
            for name in ("postgres", "nobody"):
                try:
                    pwd.getpwnam(name)
                    self.user = name
                    break
                except KeyError:
                    pass

    def _cmd(self, *argv: str) -> list[str]:
        return (["runuser", "-u", self.user, "--"] if self.user else []) + list(argv)

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(self.root, self.user)
            os.chmod(self.root, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=100"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"), "-o", opts,
                  "-w", "-t", "60", "start")
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        out = subprocess.run(self._cmd(*argv), capture_output=True, text=True, cwd="/")
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(self._cmd(*argv))} failed ({out.returncode}):\n{out.stdout}{out.stderr}")

    def version(self) -> str:
        return subprocess.run([str(self.bin / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
                       capture_output=True, cwd="/")


def run_optuna(system: str, workers: int, trials: int, objective: str, workdir: Path,
               venv: str = OPTUNA_VENV, seed: int = 1) -> dict:
    python = _venv_python(venv, "Optuna")
    env = _env()
    me = str(Path(__file__).resolve())
    pg = None
    notes = ""
    try:
        if system == "optuna-journal":
            storage = f"journal:{workdir / f'journal_{os.getpid()}_{int(time.time() * 1000)}.log'}"
        else:
            # its own directory in the system temp dir: the postgres account cannot enter a 0700 workdir of root's
            pg = Postgres(Path(tempfile.mkdtemp(prefix="peers-pg-")))
            storage = pg.start()
            notes = f"{pg.version()}, port {pg.port}, fsync and synchronous_commit on (defaults); "
        study = f"peers_{objective}_{workers}"
        subprocess.run([python, me, "_optuna-create", "--storage", storage, "--study", study],
                       check=True, env=env, capture_output=True, text=True)
        per = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
        t0 = time.time()
        procs = [subprocess.Popen([python, me, "_optuna-worker", "--storage", storage, "--study", study,
                                   "--trials", str(n), "--objective", objective, "--seed", str(seed * 1000 + i)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i, n in enumerate(per)]
        errs = []
        for p in procs:
            _, err = p.communicate(timeout=3600)
            if p.returncode != 0:
                errs.append(err[-3000:])
        wall = time.time() - t0
        if errs:
            raise RuntimeError("optuna worker failed:\n" + errs[0])
        out = subprocess.run([python, me, "_optuna-collect", "--storage", storage, "--study", study],
                             check=True, env=env, capture_output=True, text=True)
        res = _last_json(out.stdout)
        span, rate = _rate(res.pop("t_end"))
        notes += (f"optuna {res.pop('optuna')}, sqlalchemy {res.pop('sqlalchemy')}, psycopg2 {res.pop('psycopg2')} "
                  f"({venv}); TPESampler() defaults, seed per process; {workers} processes x {per[0]} trials")
        return dict(res, seconds=span, trials_per_s=rate, wall_s=wall, notes=notes)
    finally:
        if pg is not None:
            pg.stop()
            shutil.rmtree(pg.root, ignore_errors=True)


def _optuna_storage(spec: str):
    import optuna
    if spec.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage
        return JournalStorage(JournalFileBackend(spec[len("journal:"):]))
    return optuna.storages.RDBStorage(spec)


def _optuna_create(args: argparse.Namespace) -> None:
    import optuna
    optuna.create_study(study_name=args.study, storage=_optuna_storage(args.storage), direction="minimize")


def _optuna_worker(args: argparse.Namespace) -> None:
    import optuna
    import peer_objectives
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=_optuna_storage(args.storage),
                              sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.optimize(peer_objectives.OPTUNA[args.objective], n_trials=args.trials)


def _optuna_collect(args: argparse.Namespace) -> None:
    import optuna
    import sqlalchemy
    try:
        import psycopg2
        pgv = psycopg2.__version__.split()[0]
    except ImportError:
        pgv = "-"
    study = optuna.load_study(study_name=args.study, storage=_optuna_storage(args.storage))
    all_trials = study.get_trials(deepcopy=False)
    ok = [t.datetime_complete.timestamp() for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    print(json.dumps({"done": len(ok), "total": len(all_trials), "t_end": ok, "optuna": optuna.__version__,
                      "sqlalchemy": sqlalchemy.__version__, "psycopg2": pgv}))



# ----------------------------------------------------------------------------- measurement matrix

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
        args.mongo, own_server = _start_secantus(Path(server_tmp.name))
    try:
        _matrix_runs(args, cells, runs, loads, raw)
    finally:
        if own_server is not None:
            from hyperdist.server import stop_server
            stop_server(own_server)
            server_tmp.cleanup()
    total = time.time() - t0
    lines = [f"trials/s (median [min, max] over {args.repeats} interleaved repeats, {args.trials} trials per run; "
             "clock from the first finished trial to the last)", "",
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
    out["seconds"] = round(out["seconds"], 3)
    out["trials_per_s"] = round(out["trials_per_s"], 2)
    out["wall_s"] = round(out["wall_s"], 2)
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
        args = ap.parse_args(argv[1:])
        {"_hyperopt-driver": _hyperopt_driver, "_optuna-create": _optuna_create,
         "_optuna-worker": _optuna_worker, "_optuna-collect": _optuna_collect}[argv[0]](args)
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
                    queue=args.queue, use_fmin=args.fmin, subprocesses=args.subprocesses, seed=args.seed)
    else:
        opts = dict(venv=args.optuna_venv, seed=args.seed)
    print(json.dumps(run(args.system, args.workers, args.trials, args.objective, args.mongo, args.workdir, **opts)))


if __name__ == "__main__":
    main()
