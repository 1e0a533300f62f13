"""The embedded local server: a `mongod` found on PATH, else SecantusDB, always a separate process.

SecantusDB is GPL-licensed; hyperdist never imports it, it only runs `python -m secantus`. The
server's pid and URL are kept in `<data_dir>/server.json`, so later commands (and a second search
on the same directory) find and reuse it, and `hyperdist server stop` can stop it. Starting and
stopping hold a lock on the directory, so two searches starting at once share one server.

SecantusDB gets `--config <data_dir>/secantusd.toml` (created empty): it would otherwise pick up a
secantusd.toml from the current directory or the home directory, and that file is the place to
tune the embedded server.
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

from .errors import HyperdistError

_LISTENING = re.compile(r"listening on (\S+):(\d+)")


@dataclass
class LocalServer:
    url: str
    pid: int
    data_dir: Path
    kind: str


def _state_file(data_dir: Path) -> Path:
    return Path(data_dir) / "server.json"


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "server.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _recorded(data_dir: Path) -> LocalServer | None:
    try:
        info = json.loads(_state_file(data_dir).read_text())
        return LocalServer(info["url"], int(info["pid"]), Path(data_dir), info["kind"])
    except (OSError, ValueError, KeyError, TypeError):
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
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port.split("/")[0])), timeout=1):
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


def start_server(data_dir: Path, *, host: str = "127.0.0.1", port: int = 0, auth: bool = False,
                 log_file: Path | None = None, timeout: float = 30) -> LocalServer:
    """Start (or reuse) the local server for data_dir and wait until it accepts connections."""
    data_dir = Path(data_dir).resolve()
    with _locked(data_dir):
        running = server_status(data_dir)
        if running is not None:
            return running
        return _start(data_dir, host, port, auth, log_file, timeout)


def _start(data_dir: Path, host: str, port: int, auth: bool, log_file: Path | None, timeout: float) -> LocalServer:
    (data_dir / "db").mkdir(parents=True, exist_ok=True)
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
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = _wait_ready(proc, kind, host, port, log_path, offset, timeout)
    except BaseException:  # interrupted while it starts: not recorded yet, so nobody else would stop it
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    server = LocalServer(url, proc.pid, data_dir, kind)
    tmp = _state_file(data_dir).with_suffix(".tmp")  # readers without the lock never see half a file
    tmp.write_text(json.dumps(dict(asdict(server), data_dir=str(data_dir), started=time.time())))
    os.replace(tmp, _state_file(data_dir))
    return server


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
