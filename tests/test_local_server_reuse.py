"""The local server a command starts: kept up for the next command, stopped after its idle limit,
never left behind by a command killed by a signal; and never open to other machines by accident."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperdist import hp
from hyperdist.space.compiled import compile_space
from hyperdist.server.embedded import server_status, stop_server
from hyperdist.server.use import use_server
from hyperdist.store import Store
from harness import TESTS, worker_env


def _hd(data: Path, *args: str, idle: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hyperdist", *args, "--data-dir", str(data)],
                          env=worker_env(HYPERDIST_SERVER_IDLE=str(idle)), capture_output=True, text=True,
                          timeout=kw.pop("timeout", 180), **kw)


def _recorded_pid(data: Path) -> int:
    return json.loads((data / "server.json").read_text())["pid"]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_the_read_after_a_search_reuses_its_server(tmp_path):
    data = tmp_path / "hd"
    try:
        run = _hd(data, "search", f"{TESTS / 'objectives.py'}:quadratic", "--space", f"{TESTS / 'objectives.py'}:space",
                  "--max-evals", "8", "--workers", "1", "--exp", "q", "--no-progress", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "starting the local server" in run.stderr   # a cold start says what it is doing
        pid = _recorded_pid(data)
        for command in (["status", "q"], ["best", "q"], ["list"]):
            read = _hd(data, *command, cwd=tmp_path)
            assert read.returncode == 0, read.stderr
            assert "starting the local server" not in read.stderr     # no new server ...
            assert _recorded_pid(data) == pid                           # ... the same one
        assert "8/8 finished" in _hd(data, "status", "q").stdout
    finally:
        stop_server(data)


def test_an_idle_server_stops_by_itself(tmp_path):
    data = tmp_path / "hd"
    run = _hd(data, "list", idle=1)
    assert run.returncode == 0 and "no experiments" in run.stdout, run.stderr
    pid = _recorded_pid(data)
    assert _wait_gone(pid, 60), "the idle server was not stopped"
    assert server_status(data) is None


def test_a_read_command_killed_by_a_signal_leaves_no_server(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        data = tmp_path / f"hd{sig}"
        server, use, started = use_server(data, idle=1)       # held here until the watcher holds it
        assert started
        store = Store(server.url)
        space = compile_space({"x": hp.uniform("x", 0, 1)})
        store.create_experiment("live", space=space.to_json(), space_hash=space.hash, objective=None, algo={},
                                max_evals=5, seed=0)
        store.acquire_coordinator("live", "elsewhere:1", lease_seconds=600)   # running: watched until killed
        store.close()
        watch = subprocess.Popen([sys.executable, "-m", "hyperdist", "status", "live", "--watch", "--interval", "0.2",
                                  "--data-dir", str(data)], env=worker_env(), stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while "experiment live" not in watch.stdout.readline():
                assert time.monotonic() < deadline and watch.poll() is None
            use.release()
            time.sleep(3)                 # held by the watcher: the idle limit does not apply
            assert server_status(data) is not None
            watch.send_signal(sig)
            assert watch.wait(30) in (-sig, 128 + sig)
            assert _wait_gone(server.pid, 60), f"server {server.pid} outlived a command killed by signal {sig}"
        finally:
            use.release()
            watch.kill()
            watch.communicate()
            stop_server(data)


def test_a_killed_keeper_takes_its_server_along(tmp_path):
    data = tmp_path / "hd"
    assert _hd(data, "list").returncode == 0
    info = json.loads((data / "server.json").read_text())
    os.kill(info["keeper"], signal.SIGKILL)
    assert _wait_gone(info["pid"], 60)


def test_a_server_open_to_other_machines_needs_auth_or_insecure(tmp_path):
    data = tmp_path / "hd"
    refused = _hd(data, "server", "start", "--host", "0.0.0.0")
    assert refused.returncode == 2 and "--auth" in refused.stderr and "--insecure" in refused.stderr
    assert "Traceback" not in refused.stderr and server_status(data) is None
    try:
        opened = _hd(data, "server", "start", "--host", "0.0.0.0", "--insecure")
        assert opened.returncode == 0 and "warning:" in opened.stderr, opened.stderr
        assert server_status(data) is not None
    finally:
        stop_server(data)


def test_an_auth_server_refuses_strangers_and_serves_local_commands(tmp_path):
    data = tmp_path / "hd"
    env = worker_env(HYPERDIST_SERVER_PASSWORD="pa55:w@rd")
    try:
        run = subprocess.run([sys.executable, "-m", "hyperdist", "server", "start", "--host", "0.0.0.0",
                              "--auth", "alice", "--data-dir", str(data)], env=env, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr
        assert "pa55" not in run.stdout + run.stderr and "***" in run.stdout
        url = server_status(data).url
        assert url.startswith("mongodb://alice:") and (os.stat(data / "server.json").st_mode & 0o077) == 0
        address = url.split("@", 1)[1].split("/", 1)[0]
        with pytest.raises(Exception, match="authentication|Unauthorized|requires"):
            Store(f"mongodb://{address}", db="hyperdist", timeout_ms=3000)
        listed = _hd(data, "list")                      # commands here read the credentials of server.json
        assert listed.returncode == 0 and "no experiments" in listed.stdout, listed.stderr
    finally:
        stop_server(data)


def test_a_worker_without_mongo_uses_the_local_server(tmp_path):
    data = tmp_path / "hd"
    try:
        run = _hd(data, "worker", "--allow", "objectives", "--idle-timeout", "1")
        assert run.returncode == 0, run.stderr
        assert "starting the local server" in run.stderr and server_status(data) is not None
    finally:
        stop_server(data)


def test_server_start_keeps_the_server_a_search_started_up(tmp_path):
    """The quickstart's "workers started by hand" after a search: `server start` finds the server
    the search started (idle limit) and keeps it up until `server stop`; options it cannot apply
    to a running server are refused, naming what to do."""
    data = tmp_path / "hd"
    try:
        assert _hd(data, "list", idle=2).returncode == 0
        pid = _recorded_pid(data)
        assert "stops after 2 s without a command" in _hd(data, "server", "status", idle=2).stdout
        start = _hd(data, "server", "start", idle=2)
        assert start.returncode == 0 and "already running" in start.stdout, start.stderr
        assert "stays up until `hyperdist server stop`" in start.stdout
        assert "until `hyperdist server stop`" in _hd(data, "server", "status").stdout
        time.sleep(6)  # three idle limits
        assert server_status(data) is not None and _recorded_pid(data) == pid
        refused = _hd(data, "server", "start", "--port", "1")
        assert refused.returncode != 0 and refused.stderr.startswith("error: ") and "server stop" in refused.stderr
        assert "stopped" in _hd(data, "server", "stop").stdout
        assert _wait_gone(pid, 30)
    finally:
        stop_server(data)
