"""The local server's life under a running search (walk-through 5, findings 1 and 7): killed, it is
started again on the same port and the search goes on; stopped on purpose, the search says so and
ends; a search interrupted while it starts the server leaves nothing running. Real processes only."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperdist.server.embedded import stop_server
from hyperdist.store import Store, TrialState
from harness import TESTS, worker_env

OBJ = str(TESTS / "objectives.py")


def _search(data: Path, cwd: Path, exp: str, evals: int, delay: str = "0.3") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hyperdist", "search", f"{OBJ}:quadratic", "--space", f"{OBJ}:space",
                             "--max-evals", str(evals), "--workers", "2", "--exp", exp, "--no-progress",
                             "--data-dir", str(data)],
                            cwd=cwd, env=worker_env(HYPERDIST_TEST_DELAY=delay, HYPERDIST_SERVER_IDLE="120"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _hd(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hyperdist", *args, "--data-dir", str(data)],
                          env=worker_env(HYPERDIST_SERVER_IDLE="120"), capture_output=True, text=True, timeout=180)


def _record(data: Path) -> dict:
    return json.loads((data / "server.json").read_text())


def _done(data: Path, exp: str) -> int:
    store = Store(_record(data)["url"])
    try:
        return store.counts(exp)[TrialState.DONE]
    finally:
        store.close()


def _until(check, timeout: float = 180) -> None:
    """Wait for `check()` (a condition on real processes), failing the test only after a long bound."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass  # not written yet
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout} s")
        time.sleep(0.2)


def _processes_of(data: Path) -> list[int]:
    """Processes whose command line names the data directory (keeper, server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(data).encode() in (entry / "cmdline").read_bytes():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("victim", ["pid", "keeper"])
def test_a_server_killed_under_a_search_is_started_again_on_its_port(tmp_path, victim):
    data, exp = tmp_path / "hd", f"k-{victim}"
    search = _search(data, tmp_path, exp, 40)
    try:
        _until(lambda: _done(data, exp) >= 3)
        before = _record(data)
        os.kill(before[victim], signal.SIGKILL)
        status = _hd(data, "status", exp)  # while it is being started again: no second server
        out, err = search.communicate(timeout=300)
        assert search.returncode == 0, err
        after = _record(data)
        assert after["url"] == before["url"] and after["pid"] != before["pid"]
        why = "stopped (signal 9)" if victim == "pid" else f"stopped (its keeper, pid {before['keeper']}, is gone)"
        assert f"the local server {why}; restarted it" in err
        assert "40 trials: 40 ok" in err
        assert status.returncode == 0, status.stderr
        assert _done(data, exp) == 40
    finally:
        if search.poll() is None:
            search.kill()
            search.communicate()
        stop_server(data)


def test_server_stop_refuses_while_a_search_uses_it_and_force_ends_the_search(tmp_path):
    data = tmp_path / "hd"
    search = _search(data, tmp_path, "busy", 2000)
    try:
        _until(lambda: _done(data, "busy") >= 2)
        pid = _record(data)["pid"]
        refused = _hd(data, "server", "stop")
        assert refused.returncode != 0 and refused.stderr.startswith("error: the local server in ")
        assert f"pid {search.pid}:" in refused.stderr and "--exp busy" in refused.stderr and "--force" in refused.stderr
        assert _record(data)["pid"] == pid and search.poll() is None  # left running, the search too
        forced = _hd(data, "server", "stop", "--force")
        assert forced.returncode == 0 and "stopped" in forced.stdout
        out, err = search.communicate(timeout=180)  # not the 5-minute outage timeout
        assert search.returncode != 0
        assert "the local server in" in err and "was stopped (`hyperdist server stop --force`)" in err
        assert "retrying" not in err.split("stopped (`hyperdist server stop --force`)")[-1]
        _until(lambda: not _processes_of(data), 60)
    finally:
        if search.poll() is None:
            search.kill()
            search.communicate()
        stop_server(data)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_the_search_starts_its_server_stops_that_server(tmp_path, sig):
    data = tmp_path / "hd"
    search = _search(data, tmp_path, "s", 20)
    try:
        first = search.stderr.readline()
        assert first.startswith("starting the local server"), first
        search.send_signal(sig)  # the keeper and the server are starting now
        out, err = search.communicate(timeout=120)
        assert search.returncode == 128 + sig
        assert f"interrupted by {signal.Signals(sig).name}" in err
        _until(lambda: not _processes_of(data), 60)  # the keeper and the server it started
        assert _hd(data, "server", "status").returncode == 1
    finally:
        if search.poll() is None:
            search.kill()
            search.communicate()
        stop_server(data)
