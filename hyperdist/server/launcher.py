"""Local process management for the CLI: which server to talk to, and worker processes on this machine."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from hyperdist.errors import HyperdistError
from hyperdist.objective.processes import die_with_parent
from hyperdist.objective.reference import python_argv
from hyperdist.server.embedded import LocalServer, server_status, stop_server
from hyperdist.server.use import ServerUse, use_server
from hyperdist.server.prefork import Forked, Prefork
from hyperdist.server.watch import ServerWatch
from hyperdist.store import Store, parse_url


@dataclass
class Connection:
    store: Store
    url: str                       # the URL workers should use (credentials included; never log it)
    started: LocalServer | None    # the embedded server, when this command started it
    data_dir: Path
    use: ServerUse | None = None   # this command's hold on the embedded server
    watch: ServerWatch | None = None  # tells the person when the embedded server dies under this command

    def close(self, stop_started_server: bool = False) -> None:
        """Close the store and let go of the embedded server: it stays up for the next command until
        its idle limit (hyperdist/server/keeper.py), or stops now with `stop_started_server`."""
        if self.watch is not None:
            self.watch.close()
        self.store.close()
        if self.use is not None:
            self.use.release()
        if self.started is not None and stop_started_server:
            stop_server(self.data_dir)


def connect(mongo: str | None, data_dir: Path, *, start: bool = True, db: str | None = None,
            read_only: bool = False, announce: Callable[[str], None] | None = None,
            watch: bool = False) -> Connection:
    """A remote server when `mongo` is given; otherwise the embedded one in `data_dir`, started if
    needed (`announce` hears what a cold start does and, with `watch`, when the server dies under
    this command: server/watch.py)."""
    if mongo:
        url, db_name = parse_url(mongo, db)
        store = Store(url, db=db_name, read_only=read_only)
        return Connection(store, store.worker_url, None, data_dir)
    if not start and server_status(data_dir) is None:
        raise HyperdistError(
            f"no MongoDB given and no local server running in {str(data_dir)!r}: pass --mongo URL "
            "(or set HYPERDIST_MONGO_URL), or run `hyperdist server start`"
        )
    server, use, started = use_server(data_dir, announce=announce)
    try:
        store = Store(server.url, db=db or "hyperdist", read_only=read_only)
        conn = Connection(store, store.worker_url, server if started else None, data_dir, use)
        if watch:
            conn.watch = ServerWatch(server, store, announce or (lambda line: None))
        return conn
    except BaseException:  # interrupted (or refused): a server started for this command stops with it
        use.release()
        if started:
            stop_server(data_dir)
        raise


@dataclass
class LocalWorker:
    """A worker process this command started, and where its log of this run begins."""

    index: int
    proc: subprocess.Popen | Forked
    log: Path | None
    offset: int = 0

    def log_tail(self, chars: int = 6000) -> str:
        """What the worker logged since it started (its last `chars` characters)."""
        if self.log is None:
            return ""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(max(self.offset, fh.seek(0, os.SEEK_END) - chars))
                return fh.read().decode(errors="replace")
        except OSError:
            return ""


def spawn_workers(n: int, url: str, exp_key: str, allow: str, *, db: str = "hyperdist", isolate: bool = False,
                  trial_timeout: float | None = None, log_dir: Path | None = None, devices: list[str] | None = None,
                  env: dict[str, str] | None = None, forks: Prefork | None = None) -> list[LocalWorker]:
    """Start n `hyperdist worker` processes for one experiment; the URL travels in the environment.
    They run in this directory, which relative objective references are resolved against; it is not
    put ahead of the standard library on their path (hyperdist/__main__.py). With `devices`, worker i
    sees only GPU devices[i % len(devices)] (hyperdist/distributed/gpus.py); `env` adds variables for the objective.
    `forks` (server/prefork.py) supplies processes forked earlier, which skip the interpreter's start
    and imports; fresh interpreters make up the rest."""
    env = {**os.environ, **(env or {}), "HYPERDIST_MONGO_URL": url, "HYPERDIST_DB": db}
    args = ["worker", "--exp", exp_key, "--allow", allow, "--idle-timeout", "600"]
    if isolate:
        args.append("--subprocess")
    if trial_timeout:
        args += ["--trial-timeout", str(trial_timeout)]
    python = python_argv("from hyperdist.cli import main; main(prog_name='hyperdist')")
    workers = []
    for i in range(n):
        path = log_dir / f"worker-{_file_part(exp_key)}-{i}.log" if log_dir else None  # one search's own
        worker_env = dict(env, CUDA_VISIBLE_DEVICES=devices[i % len(devices)]) if devices else env
        with open(path, "ab") if path else open(os.devnull, "wb") as log:
            offset = log.tell()
            own = [*args, "--slot", f"{i}/{n}"]  # worker i of n prefers tids i mod n: they seldom race
            if forks:
                proc: subprocess.Popen | Forked = forks.start(own, worker_env, path)
            else:  # their own session (the terminal's Ctrl-C is the search's to hand on), and SIGTERM
                # when the search dies however it dies (even SIGKILL): they hand their trials back and exit
                proc = subprocess.Popen([*python, *own], env=worker_env, stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        workers.append(LocalWorker(i, proc, path, offset))
    return workers


def stop_workers(workers: Sequence[subprocess.Popen | Forked | LocalWorker], timeout: float = 20.0,
                 graceful: bool = True) -> None:
    """SIGTERM (workers hand their trial back), then SIGKILL whatever is left after `timeout`."""
    procs = _procs(workers)
    signal_workers(procs, signal.SIGTERM if graceful else signal.SIGKILL)
    wait_workers(procs, timeout)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def signal_workers(workers: Sequence[subprocess.Popen | Forked | LocalWorker], signum: int = signal.SIGTERM) -> None:
    """Send `signum` to the workers still running, without waiting: SIGTERM makes a worker hand
    back what it has not started and exit (one waiting for work exits at once)."""
    for p in _procs(workers):
        if p.poll() is None:
            p.send_signal(signum)


def wait_workers(workers: Sequence[subprocess.Popen | Forked | LocalWorker], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for p in _procs(workers):
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
    return True


def _procs(workers: Sequence[subprocess.Popen | Forked | LocalWorker]) -> list[subprocess.Popen | Forked]:
    return [w.proc if isinstance(w, LocalWorker) else w for w in workers]


def _file_part(exp_key: str) -> str:
    """An experiment key as part of a file name: two searches in one directory log apart."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", exp_key)[:80] or "_"
