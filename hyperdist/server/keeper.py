"""The keeper of a local server started by a command: it owns the server process and stops it once
no command has used it for `--idle` seconds (python -m hyperdist.server.keeper DATA_DIR --idle S).

Why a process of its own: the command that needed the server is gone by the time the server should
stop, and the next command should find the server still up (a cold start costs seconds, a reused
server nothing). Why it cannot leak: the server is the keeper's child and gets SIGTERM when the
keeper dies, even by SIGKILL (Linux); the keeper stops the server on SIGTERM, SIGHUP and SIGINT and
exits when the server is gone. Commands hold a shared lock on `server.inuse` while they run (see
hyperdist.server.use.ServerUse); the keeper stops the server only while it holds that lock exclusively,
so no command ever loses the server under it. `hyperdist server start` can lift the idle limit of a
running server (use.keep_up): the keeper reads the record before it stops the server. A server
that dies by itself (killed, crashed) while a command holds that lock is started again on the same
port and data directory, so the commands' clients reconnect to it; the record says why
(hyperdist/server/watch.py tells the commands' user).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from pathlib import Path

from hyperdist.errors import HyperdistError
from hyperdist.server.embedded import (LocalServer, _locked, _recorded, _start, _state_file, _write_record, read_record,
                                       stop_server)
from hyperdist.server.use import kept_up

STOPS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
POLL = 1.0  # seconds between looks at the server and the last use


def _idle_for(inuse: Path) -> float:
    try:
        return time.time() - inuse.stat().st_mtime
    except OSError:
        return float("inf")


def keep(data_dir: Path, idle: float, log: Path, timeout: float, port: int = 0) -> int:
    server: LocalServer | None = None

    def stop(signum: int, _frame: object) -> None:
        if server is not None:  # while it starts, the SystemExit below makes _start kill it
            stop_server(data_dir)
        sys.exit(128 + signum)

    for sig in STOPS:
        signal.signal(sig, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)  # its starter blocks them around the fork (embedded.py)
    server = _start(data_dir, "127.0.0.1", port, False, log, timeout, idle=idle, with_parent=True)
    inuse = data_dir / "server.inuse"
    while True:
        time.sleep(min(POLL, max(idle, 0.05)))
        ended = _ended(server.pid)
        if ended is not None:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # its stop takes the lock this holds: after it
            try:
                server = _restarted(data_dir, server, ended, inuse, log, timeout)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
            if server is None:
                return 0
            continue
        if _idle_for(inuse) < idle or kept_up(data_dir, server.pid):
            continue
        with open(inuse, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a command is using it
            if _idle_for(inuse) >= idle and not kept_up(data_dir, server.pid):
                _say(f"no command for {idle:g} s, stopping the server")
                stop_server(data_dir)
                return 0


def _ended(pid: int) -> str | None:
    """How the server (our child) ended, or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "stopped"
    if done == 0:
        return None
    if os.WIFSIGNALED(status):
        return f"stopped (signal {os.WTERMSIG(status)})"
    return f"stopped (exit code {os.WEXITSTATUS(status)})"


def _restarted(data_dir: Path, server: LocalServer, ended: str, inuse: Path, log: Path,
               timeout: float) -> LocalServer | None:
    """The server died by itself: start it again on the same port and data directory while a command
    holds server.inuse or it was kept up, recording why (the commands' ServerWatch tells their user).
    None when it was stopped on purpose (`stop_server` removed its record), nobody needs it, or it
    cannot start."""
    with _locked(data_dir):
        record = _recorded(data_dir)
        if record is None or record.pid != server.pid:
            return None  # stopped by `hyperdist server stop`, or another command already started one
        with open(inuse, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if record.idle is not None:  # kept up (keep_up) runs until `server stop`: start it again
                    _say(f"the server {ended} while no command used it")
                    _state_file(data_dir).unlink(missing_ok=True)
                    return None
            except BlockingIOError:
                pass  # in use: start it again
        _say(f"the server {ended}; starting it again on the same port")
        port = int(server.url.rsplit(":", 1)[-1])
        try:
            again = _start(data_dir, "127.0.0.1", port, False, log, timeout, idle=record.idle, with_parent=True)
        except HyperdistError as exc:
            _say(f"could not start it again: {exc}")
            return None  # its record stays: the commands' ServerWatch tries once more, then says so
        _write_record(data_dir, dict(read_record(data_dir) or {}, restarted=ended))
        return again


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} keeper: {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hyperdist.keeper", description=__doc__)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--idle", type=float, required=True, help="seconds without a command before stopping")
    ap.add_argument("--log", type=Path, required=True, help="the server's log file")
    ap.add_argument("--timeout", type=float, default=30, help="seconds the server may take to start")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    args = ap.parse_args(argv)
    return keep(args.data_dir.resolve(), args.idle, args.log, args.timeout, args.port)


if __name__ == "__main__":
    sys.exit(main())
