"""The keeper of a local server started by a command: it owns the server process and stops it once
no command has used it for `--idle` seconds (python -m hyperdist.server.keeper DATA_DIR --idle S).

Why a process of its own: the command that needed the server is gone by the time the server should
stop, and the next command should find the server still up (a cold start costs seconds, a reused
server nothing). Why it cannot leak: the server is the keeper's child and gets SIGTERM when the
keeper dies, even by SIGKILL (Linux); the keeper stops the server on SIGTERM, SIGHUP and SIGINT and
exits when the server is gone. Commands hold a shared lock on `server.inuse` while they run (see
hyperdist.server.embedded.ServerUse); the keeper stops the server only while it holds that lock exclusively,
so no command ever loses the server under it. `hyperdist server start` can lift the idle limit of a
running server (embedded.keep_up): the keeper reads the record before it stops the server.
"""
from __future__ import annotations

import argparse
import fcntl
import signal
import sys
import time
from pathlib import Path

from hyperdist.server.embedded import _alive, _start, kept_up, stop_server

POLL = 1.0  # seconds between looks at the server and the last use


def _idle_for(inuse: Path) -> float:
    try:
        return time.time() - inuse.stat().st_mtime
    except OSError:
        return float("inf")


def keep(data_dir: Path, idle: float, log: Path, timeout: float) -> int:
    server = _start(data_dir, "127.0.0.1", 0, False, log, timeout, idle=idle, with_parent=True)

    def stop(signum: int, _frame: object) -> None:
        stop_server(data_dir)
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    inuse = data_dir / "server.inuse"
    while _alive(server.pid):
        time.sleep(min(POLL, max(idle, 0.05)))
        if _idle_for(inuse) < idle or kept_up(data_dir, server.pid):
            continue
        with open(inuse, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a command is using it
            if _idle_for(inuse) >= idle and not kept_up(data_dir, server.pid):
                print(f"{time.strftime('%H:%M:%S')} keeper: no command for {idle:g} s, stopping the server",
                      flush=True)
                stop_server(data_dir)
                return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hyperdist.keeper", description=__doc__)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--idle", type=float, required=True, help="seconds without a command before stopping")
    ap.add_argument("--log", type=Path, required=True, help="the server's log file")
    ap.add_argument("--timeout", type=float, default=30, help="seconds the server may take to start")
    args = ap.parse_args(argv)
    return keep(args.data_dir.resolve(), args.idle, args.log, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
