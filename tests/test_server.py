"""The embedded server launcher: start, find, reuse, stop and restart it on one data directory."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from hyperdist.server import embedded as server_mod
from hyperdist.errors import HyperdistError
from hyperdist.server.embedded import server_status, start_server, stop_server
from hyperdist.store import Store


def _write(url: str, n: int) -> None:
    store = Store(url, db="keep", timeout_ms=3000)
    store.create_experiment("e", space={}, space_hash="h", objective=None, algo={"name": "rand", "params": {}},
                            max_evals=n, seed=1)
    for tid in store.reserve_tids("e", n):  # one write each: the last ones are the easiest to lose
        store.insert_trials("e", [(tid, {"x": float(tid)})])
    store.close()


def _tids(url: str) -> list[int]:
    store = Store(url, db="keep", timeout_ms=3000)
    try:
        return [d["tid"] for d in store.history("e")]
    finally:
        store.close()


def test_start_status_reuse_stop_and_restart_keep_the_data(tmp_path, local_servers):
    data = tmp_path / "hd"
    first = local_servers.start(data)
    try:
        assert first.kind == "secantus" and first.url.startswith("mongodb://127.0.0.1:")
        info = json.loads((data / "server.json").read_text())
        assert (info["pid"], info["url"], info["kind"]) == (first.pid, first.url, "secantus") and info["started"] > 0
        assert "listening on" in (data / "server.log").read_text()
        assert server_status(data) == first
        assert start_server(data) == first  # a second search on the same directory shares it
        _write(first.url, 5)
        assert stop_server(data) is True
        assert server_status(data) is None and not (data / "server.json").exists()
        assert stop_server(data) is False
        with pytest.raises(ProcessLookupError):
            os.kill(first.pid, 0)
        second = local_servers.start(data)
        assert second.pid != first.pid and _tids(second.url) == [0, 1, 2, 3, 4]
    finally:
        local_servers.kill_all()


def test_killed_server_restarts_with_every_acknowledged_write(local_servers, tmp_path):
    data = tmp_path / "hd"
    server = local_servers.start(data)
    _write(server.url, 200)
    local_servers.kill(server)  # at once: no time for a background flush
    assert server_status(data) is None and (data / "server.json").exists()  # a stale record
    again = local_servers.start(data)
    assert again.pid != server.pid and _tids(again.url) == list(range(200))


def test_simultaneous_starts_share_one_server(local_servers, tmp_path):
    data = tmp_path / "hd"
    started: list = []
    threads = [threading.Thread(target=lambda: started.append(local_servers.start(data))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(started) == 3 and len({s.pid for s in started}) == 1


def test_a_record_naming_someone_elses_process_is_left_alone(tmp_path, mongo_url):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tmp_path.joinpath("server.json").write_text(json.dumps(
            {"pid": bystander.pid, "url": mongo_url, "kind": "secantus", "started": 0}))
        assert server_status(tmp_path) is None
        assert stop_server(tmp_path, timeout=1) is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_missing_secantus_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(server_mod.shutil, "which", lambda name: None)
    real_find_spec = server_mod.importlib.util.find_spec
    monkeypatch.setattr(server_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "secantus" else real_find_spec(name, *a))
    with pytest.raises(HyperdistError, match=r"pip install 'hyperdist\[local\]'.*--mongo"):
        start_server(tmp_path / "hd")


def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path, local_servers):
    data = tmp_path / "hd"
    local_servers.start(data)
    (data / "server.json").unlink()  # forget it: a second server then finds the directory in use
    with pytest.raises(HyperdistError, match="exited with code"):
        start_server(data, log_file=tmp_path / "second.log")
    assert (tmp_path / "second.log").read_text()


_FAKE_MONGOD = """\
#!{python}
# Stands in for mongod: records its arguments, then serves through SecantusDB.
import argparse, pathlib, signal, subprocess, sys
p = argparse.ArgumentParser()
p.add_argument("--dbpath"); p.add_argument("--bind_ip"); p.add_argument("--port"); p.add_argument("--auth", action="store_true")
a = p.parse_args()
pathlib.Path({record!r}).write_text(" ".join(sys.argv[1:]))
child = subprocess.Popen([sys.executable, "-m", "secantus", "--host", a.bind_ip, "--port", a.port,
                          "--storage-path", a.dbpath])
pathlib.Path({child_pid!r}).write_text(str(child.pid))
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
sys.exit(child.wait())
"""


def test_a_mongod_on_path_is_preferred(tmp_path, monkeypatch):
    bin_dir, data = tmp_path / "bin", tmp_path / "hd"
    bin_dir.mkdir()
    record, child_pid = tmp_path / "argv", tmp_path / "child.pid"
    fake = bin_dir / "mongod"
    fake.write_text(textwrap.dedent(_FAKE_MONGOD).format(python=sys.executable, record=str(record),
                                                         child_pid=str(child_pid)))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    server = start_server(data)
    try:
        assert server.kind == "mongod" and server_status(data) == server
        port = server.url.rsplit(":", 1)[1]
        assert record.read_text() == f"--dbpath {data.resolve() / 'db'} --bind_ip 127.0.0.1 --port {port}"
        _write(server.url, 1)
    finally:
        os.kill(int(child_pid.read_text()), signal.SIGKILL)  # the wrapper exits with its child
        stop_server(data, timeout=10)
    assert server_status(data) is None


def test_server_module_never_imports_pymongo_or_secantus():
    source = Path(server_mod.__file__).read_text()
    assert "import pymongo" not in source and "from pymongo" not in source
    assert "import secantus" not in source and "from secantus" not in source
