"""A command's use of the local server: the hold that keeps it up, starting it when none runs,
and the idle limit after which its keeper stops it (server/keeper.py).

Commands in use hold a shared lock on `<data_dir>/server.inuse`; the kernel drops it when a command
dies however it dies, and the file's mtime is the time of the last use, so the keeper can tell an
idle server from a busy one without any command having to say goodbye.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from hyperdist.errors import HyperdistError
from hyperdist.server.embedded import (LocalServer, _keeper_busy, _locked, _recorded, _write_record, read_record,
                                       server_status, start_server, stop_server)

DEFAULT_IDLE = 300.0   # seconds a server started by a command outlives the last command using it


class ServerUse:
    """A command's hold on the local server: a shared lock the keeper waits for, and the file's
    mtime, the time of the last use, which `release` (or the process's end) leaves behind."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "server.inuse"
        self._handle = open(self.path, "a")
        fcntl.flock(self._handle, fcntl.LOCK_SH)  # waits only while a keeper is stopping the server
        os.utime(self.path)

    def release(self) -> None:
        if not self._handle.closed:
            os.utime(self.path)
            self._handle.close()


def in_use(data_dir: Path) -> bool:
    """Whether a command holds the local server of data_dir (see ServerUse)."""
    path = Path(data_dir).resolve() / "server.inuse"
    if not path.exists():
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def use_server(data_dir: Path, *, idle: float | None = None,
               announce: Callable[[str], None] | None = None) -> tuple[LocalServer, ServerUse, bool]:
    """The running local server of data_dir, or a new one that stops after `idle` seconds without
    use (default HYPERDIST_SERVER_IDLE, else DEFAULT_IDLE); with the caller's hold on it, and
    whether this call started it. `announce` hears what a cold start is doing."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    use = ServerUse(data_dir)
    started = False
    try:
        running = server_status(data_dir)
        if running is not None:
            return running, use, False
        idle = idle_seconds() if idle is None else idle
        kept = _keeper_busy(data_dir)  # the server died and its keeper is starting it again: not ours
        if announce and kept:
            announce(f"the local server in {data_dir} stopped; waiting for its keeper to start it again ...")
        elif announce:
            announce(f"starting the local server in {data_dir} (it stops after {idle:g} s without a command; "
                     "`hyperdist server stop` stops it now) ...")
        t0 = time.monotonic()
        server = start_server(data_dir, idle=idle)
        started = not kept
        if announce:
            announce(f"local {server.kind} server ready at {server.url} in {time.monotonic() - t0:.1f} s")
        return server, use, started
    except BaseException:  # interrupted: a server this started is stopped, as the caller never got it
        use.release()
        if started:
            stop_server(data_dir)
        raise


def keep_up(data_dir: Path) -> LocalServer | None:
    """Make the running server of data_dir run until `hyperdist server stop`: a server a command
    started loses its idle limit in its record, which its keeper reads before it stops the server.
    Returns the server (None when none runs)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    use = ServerUse(data_dir)  # held, so its keeper is not stopping it meanwhile
    try:
        with _locked(data_dir):
            running = server_status(data_dir)
            if running is not None and running.idle is not None:
                _write_record(data_dir, dict(read_record(data_dir) or {}, idle=None))
                running.idle = None
            return running
    finally:
        use.release()


def kept_up(data_dir: Path, pid: int) -> bool:
    """Whether the record of server `pid` says it runs until stopped (see keep_up)."""
    record = _recorded(data_dir)
    return record is not None and record.pid == pid and record.idle is None


def idle_seconds() -> float:
    raw = os.environ.get("HYPERDIST_SERVER_IDLE", "")
    try:
        value = float(raw) if raw else DEFAULT_IDLE
    except ValueError:
        raise HyperdistError(f"HYPERDIST_SERVER_IDLE={raw!r}: expected a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise HyperdistError(f"HYPERDIST_SERVER_IDLE={raw!r}: expected a number of seconds, 0 or more")
    return value
