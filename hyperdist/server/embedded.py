"""The embedded local server: a `mongod` found on PATH, else SecantusDB, always a separate process.

SecantusDB is GPL-licensed; hyperdist never imports it, it only runs `python -m secantus`. The
server's pid and URL are kept in `<data_dir>/server.json`, so later commands (and a second search
on the same directory) find and reuse it, and `hyperdist server stop` can stop it. Starting and
stopping hold a lock on the directory, so two searches starting at once share one server.

SecantusDB gets `--config <data_dir>/secantusd.toml` (created empty): it would otherwise pick up a
secantusd.toml from the current directory or the home directory, and that file is the place to
tune the embedded server.

A command that needs the server and finds none starts it with an idle limit (server/use.py): a
keeper process (hyperdist/server/keeper.py) owns it and stops it once no command has used it for that
long, so the next command within the limit answers at once instead of paying a start and a stop.
Commands in use hold a shared lock on `<data_dir>/server.inuse`; the kernel drops it when a
command dies however it dies, so nothing a killed command leaves behind outlives the idle limit.
`hyperdist server start` starts one without a limit, for workers started by hand.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from hyperdist.errors import HyperdistError, redact
from hyperdist.objective.processes import die_with_parent

_LISTENING = re.compile(r"listening on (\S+):(\d+)")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class LocalServer:
    url: str
    pid: int
    data_dir: Path
    kind: str
    idle: float | None = None      # stopped after this many idle seconds by its keeper; None: runs until stopped


def _state_file(data_dir: Path) -> Path:
    return Path(data_dir) / "server.json"


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "server.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def read_record(data_dir: Path) -> dict | None:
    """server.json as written (with what only the keeper and the watch read: `keeper`, `restarted`),
    or None when there is none or it is not a JSON object."""
    try:
        info = json.loads(_state_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _recorded(data_dir: Path) -> LocalServer | None:
    info = read_record(data_dir)
    if info is None:
        return None
    try:
        return LocalServer(info["url"], int(info["pid"]), Path(data_dir), info["kind"], info.get("idle"))
    except (KeyError, TypeError, ValueError):
        return None


def _is_server(pid: int, kind: str) -> bool:
    """The recorded pid is still our server, not an unrelated process that got the number since."""
    if not Path("/proc/self").exists():
        return True  # no /proc on this system: trust the record
    try:
        return kind.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _answers(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
            return True
    except OSError:
        return False


def server_status(data_dir: Path) -> LocalServer | None:
    """The server recorded in data_dir, if its process is alive and its port answers."""
    server = _recorded(data_dir)
    if server is not None and _alive(server.pid) and _is_server(server.pid, server.kind) and _answers(server.url):
        return server
    return None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_exposure(host: str, auth: bool, insecure: bool) -> str | None:
    """Refuse a server reachable from other machines without authentication; with `insecure`, the
    warning to print instead."""
    if host in LOOPBACK or auth:
        return None
    message = (f"--host {host} makes the server reachable from other machines, and without --auth anyone who "
               "can reach the port can read, change and delete every experiment")
    if not insecure:
        raise HyperdistError(f"{message}: add --auth USER (a password is asked for), or --insecure to accept this")
    return f"warning: {message} (--insecure given)"


def start_server(data_dir: Path, *, host: str = "127.0.0.1", port: int = 0, auth: bool = False,
                 log_file: Path | None = None, timeout: float = 30, idle: float | None = None,
                 credentials: tuple[str, str] | None = None) -> LocalServer:
    """Start (or reuse) the local server for data_dir and wait until it accepts connections.

    With `idle`, a keeper process starts it and stops it after that many seconds without a command
    (see use_server). `credentials` (user, password) go into the recorded URL of an `auth` server,
    so that commands on this machine can use it; server.json is readable by its owner only.
    """
    data_dir = Path(data_dir).resolve()
    keepers: list[subprocess.Popen] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            with _locked(data_dir):
                running = _settled(data_dir, timeout)
                if running is not None:
                    return running
                if not _keeper_busy(data_dir) or time.monotonic() > deadline:
                    port = port or _port_of_dead(data_dir, host)
                    if idle is None:
                        return _start(data_dir, host, port, auth, log_file, timeout, credentials=credentials)
                    return _start_kept(data_dir, idle, log_file, timeout, port, keepers)
            time.sleep(0.1)  # its keeper is starting it again (keeper.py), and needs the lock for that
    except BaseException:  # interrupted while it starts (SIGTERM, Ctrl-C): nothing may stay behind
        for keeper in keepers:  # after the lock is released: the keeper's stop takes it
            _end(keeper)
        raise


def _keeper_busy(data_dir: Path) -> bool:
    """Whether the recorded server's keeper still runs (so it decides whether to start it again)."""
    keeper = (read_record(data_dir) or {}).get("keeper")
    return (isinstance(keeper, int) and keeper != os.getpid() and _alive(keeper)
            and _is_server(keeper, "hyperdist.server.keeper"))


def _settled(data_dir: Path, timeout: float) -> LocalServer | None:
    """The running server; None once the recorded one is gone. A recorded server process that is
    alive but does not answer is starting or stopping (its keeper's SIGTERM): wait for either, as a
    second server on the same data would corrupt it."""
    deadline = time.monotonic() + timeout
    while True:
        running = server_status(data_dir)
        record = _recorded(data_dir)
        if running is not None or record is None or not (_alive(record.pid) and _is_server(record.pid, record.kind)):
            return running
        if time.monotonic() > deadline:
            raise HyperdistError(f"the local server (pid {record.pid}) in {data_dir} runs but does not answer "
                                 f"at {redact(record.url)} after {timeout:g} s; stop it (`hyperdist server stop --force`)")
        time.sleep(0.1)


def _port_of_dead(data_dir: Path, host: str) -> int:
    """The port of the recorded server that died without `stop_server` (killed, crashed), while it
    is free: a server started again there is found by every command and worker still holding its
    URL. 0 (any free port) when there is no such record."""
    record = _recorded(data_dir)
    if record is None:
        return 0
    port = int(record.url.rsplit(":", 1)[-1].split("/", 1)[0])
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
            s.bind((host, port))
    except OSError:
        return 0  # taken since
    return port


def _end(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a process of ours and wait for it; SIGKILL after `timeout`."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start_kept(data_dir: Path, idle: float, log_file: Path | None, timeout: float, port: int,
                keepers: list[subprocess.Popen]) -> LocalServer:
    """Start a keeper (python -m hyperdist.server.keeper), which starts the server as its child and
    records it; wait until the recorded server answers. The keeper goes into `keepers` at once, so
    that the caller can stop it if this is interrupted."""
    log_path = log_file or data_dir / "server.log"
    _state_file(data_dir).unlink(missing_ok=True)
    # a stop signal handled inside Popen (between fork and its return) would leave a keeper nobody knows
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with open(log_path, "ab") as log:
            keeper = subprocess.Popen([sys.executable, "-m", "hyperdist.server.keeper", str(data_dir), "--idle",
                                       str(idle), "--log", str(log_path), "--timeout", str(timeout), "--port", str(port)],
                                      stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        keepers.append(keeper)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came meanwhile is handled now
    deadline = time.monotonic() + timeout + 10
    while time.monotonic() < deadline:
        server = server_status(data_dir)
        if server is not None:
            keepers.remove(keeper)
            return server
        if keeper.poll() is not None:
            raise HyperdistError(f"the local server did not start (keeper exit code {keeper.returncode}):\n"
                                 f"{log_path.read_text(errors='replace')[-1500:]}")
        time.sleep(0.05)
    raise HyperdistError(f"the local server did not start within {timeout:g} s; see {log_path}")


def _start(data_dir: Path, host: str, port: int, auth: bool, log_file: Path | None, timeout: float, *,
           idle: float | None = None, credentials: tuple[str, str] | None = None,
           with_parent: bool = False) -> LocalServer:
    """Start the server process and record it; `with_parent`: it gets SIGTERM when its parent (the
    keeper) dies, so even a SIGKILLed keeper leaves no server behind (Linux)."""
    db = data_dir / "db"
    db.mkdir(mode=0o700, parents=True, exist_ok=True)
    db.chmod(0o700)  # the experiments are the user's: not readable by other users of the machine
    log_path = log_file or data_dir / "server.log"
    mongod = shutil.which("mongod")
    if mongod:
        port = port or _free_port(host)
        cmd = [mongod, "--dbpath", str(data_dir / "db"), "--bind_ip", host, "--port", str(port)]
        if auth:
            cmd.append("--auth")
        kind = "mongod"
    else:
        if importlib.util.find_spec("secantus") is None:
            raise HyperdistError("no MongoDB server available: install the local server with "
                                 "pip install 'hyperdist[local]', or pass --mongo URL")
        config = data_dir / "secantusd.toml"
        config.touch()
        # --sync-on-commit: without it a SIGKILL loses the last tens of ms of acknowledged writes
        # (docs/store-notes.md); with it a write costs ~0.2 ms more.
        cmd = [sys.executable, "-m", "secantus", "--config", str(config), "--host", host, "--port", str(port),
               "--storage-path", str(data_dir / "db"), "--sync-on-commit"]
        if auth:
            cmd.append("--auth")
        kind = "secantus"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=die_with_parent if with_parent else None)
    try:
        url = _wait_ready(proc, kind, host, port, log_path, offset, timeout)
    except BaseException:  # interrupted while it starts: not recorded yet, so nobody else would stop it
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    if credentials:
        user, password = (quote(part, safe="") for part in credentials)
        url = f"mongodb://{user}:{password}@{url.split('//', 1)[1]}/?authSource=admin"
    server = LocalServer(url, proc.pid, data_dir, kind, idle)
    _write_record(data_dir, dict(asdict(server), data_dir=str(data_dir), started=time.time(),
                                 keeper=os.getpid() if with_parent else None))
    return server


def _write_record(data_dir: Path, info: dict) -> None:
    tmp = _state_file(data_dir).with_suffix(".tmp")  # readers without the lock never see half a file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the URL may hold credentials
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(info))
    os.replace(tmp, _state_file(data_dir))


def _log_since(log_path: Path, offset: int) -> str:
    with open(log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _wait_ready(proc: subprocess.Popen, kind: str, host: str, port: int, log_path: Path, offset: int,
                timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _log_since(log_path, offset)[-1500:]
            raise HyperdistError(f"the local {kind} server exited with code {proc.returncode}:\n{tail}")
        if kind == "secantus":
            match = _LISTENING.search(_log_since(log_path, offset))
            if match:
                listen = match.group(1)
                return f"mongodb://{f'[{listen}]' if ':' in listen else listen}:{match.group(2)}"
        elif _answers(f"mongodb://{host}:{port}"):
            return f"mongodb://{host}:{port}"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise HyperdistError(f"the local {kind} server did not start within {timeout:g} s; see {log_path}")


def stop_server(data_dir: Path, timeout: float = 15) -> bool:
    """SIGTERM the recorded server, SIGKILL it after `timeout`; False when none was running."""
    data_dir = Path(data_dir).resolve()
    with _locked(data_dir):
        server = _recorded(data_dir)
        _state_file(data_dir).unlink(missing_ok=True)
        if server is None or not (_alive(server.pid) and _is_server(server.pid, server.kind)):
            return False
        os.kill(server.pid, signal.SIGTERM)
        if not _gone(server.pid, timeout):
            os.kill(server.pid, signal.SIGKILL)
            _gone(server.pid, 5)
        return True


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
