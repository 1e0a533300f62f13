"""Optuna as a peer of peers.py: K processes running `study.optimize` with TPESampler on one study
in a JournalStorage file or in a throwaway PostgreSQL cluster (RDBStorage)."""
from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from peer_process import PEERS, clocks, peer_env, free_port, last_json, venv_python

OPTUNA_VENV = os.environ.get("OPTUNA_PG_VENV", "/tmp/venv-optuna-pg")


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
        self.port = free_port()
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
               venv: str = OPTUNA_VENV, seed: int = 1, space: str = "mixed6") -> dict:
    """One study, created first (Optuna's documented way: `optuna create-study`, then the workers),
    then `workers` fresh interpreters each running `study.optimize` for their share of the trials.
    The clock starts just before the workers are launched (peer_process.clocks)."""
    python = venv_python(venv, "Optuna")
    env = peer_env()
    me = str(PEERS)
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
                                   "--trials", str(n), "--objective", objective, "--seed", str(seed * 1000 + i),
                                   "--space", space],
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
        res = last_json(out.stdout)
        times = res.pop("t_end")
        notes += (f"optuna {res.pop('optuna')}, sqlalchemy {res.pop('sqlalchemy')}, psycopg2 {res.pop('psycopg2')} "
                  f"({venv}); TPESampler() defaults, seed per process; {workers} spawned processes x {per[0]} "
                  "trials; completion times: datetime_complete")
        return dict(res, **clocks(t0, times), wall_s=wall, notes=notes)
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


def optuna_create(args: argparse.Namespace) -> None:
    import optuna
    optuna.create_study(study_name=args.study, storage=_optuna_storage(args.storage), direction="minimize")


def optuna_worker(args: argparse.Namespace) -> None:
    import optuna
    import peer_objectives
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=_optuna_storage(args.storage),
                              sampler=optuna.samplers.TPESampler(seed=args.seed))
    objective = functools.partial(peer_objectives.OPTUNA[args.objective], space=args.space)
    study.optimize(objective, n_trials=args.trials)


def optuna_collect(args: argparse.Namespace) -> None:
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
