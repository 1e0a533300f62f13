"""The embedded local server: a `mongod` found on PATH, else SecantusDB, always a separate process.

SecantusDB is GPL-licensed; hyperdist never imports it, it only runs `python -m secantus`. The
server's pid and URL are kept in `<data_dir>/server.json`, so later commands (and a second search
on the same directory) find and reuse it, and `hyperdist server stop` can stop it.
"""
from __future__ import annotations

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
from dataclasses import asdict, dataclass
from pathlib import Path

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
        with socket.create_connection((host, int(port.split("/")[0])), timeout=1):
            return True
    except OSError:
        return False


def server_status(data_dir: Path) -> LocalServer | None:
    """The server recorded in data_dir, if its process is alive and its port answers."""
    path = _state_file(data_dir)
    try:
        info = json.loads(path.read_text())
        server = LocalServer(info["url"], int(info["pid"]), Path(data_dir), info["kind"])
    except (OSError, ValueError, KeyError):
        return None
    if _alive(server.pid) and _answers(server.url):
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
    running = server_status(data_dir)
    if running is not None:
        return running
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
        cmd = [sys.executable, "-m", "secantus", "--host", host, "--port", str(port), "--storage-path",
               str(data_dir / "db")]
        if auth:
            cmd.append("--auth")
        kind = "secantus"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    url = _wait_ready(proc, kind, host, port, log_path, offset, timeout)
    server = LocalServer(url, proc.pid, data_dir, kind)
    _state_file(data_dir).write_text(json.dumps(dict(asdict(server), data_dir=str(data_dir), started=time.time())))
    return server


def _wait_ready(proc: subprocess.Popen, kind: str, host: str, port: int, log_path: Path, offset: int,
                timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[offset:][-1500:]
            raise HyperdistError(f"the local {kind} server exited with code {proc.returncode}:\n{tail}")
        if kind == "secantus":
            match = _LISTENING.search(log_path.read_text(errors="replace")[offset:])
            if match:
                return f"mongodb://{match.group(1)}:{match.group(2)}"
        elif _answers(f"mongodb://{host}:{port}"):
            return f"mongodb://{host}:{port}"
        time.sleep(0.05)
    proc.kill()
    raise HyperdistError(f"the local {kind} server did not start within {timeout:g} s; see {log_path}")


def stop_server(data_dir: Path, timeout: float = 15) -> bool:
    """SIGTERM the recorded server, SIGKILL it after `timeout`; False when none was running."""
    path = _state_file(data_dir)
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    path.unlink(missing_ok=True)
    if not _alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True
