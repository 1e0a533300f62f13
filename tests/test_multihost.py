"""Three hosts on one machine: the server and two workers each in a network namespace, joined by veth
links to the root namespace, where the coordinator runs. Every address is non-loopback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest

import objectives
from hyperdist import tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.space.compiled import compile_space
from hyperdist.store import Store
from harness import OBJECTIVE, TESTS, wait_until, worker_env

pytestmark = pytest.mark.slow


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def hosts():
    """{'db': '10.x.1.2', 'w1': ..., 'w2': ...}: namespaces routed through the root namespace."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need iproute2 and root")
    tag = uuid.uuid4().hex[:4]
    names = {"db": f"hd{tag}db", "w1": f"hd{tag}w1", "w2": f"hd{tag}w2"}
    subnet = 100 + int(tag, 16) % 100
    addrs = {}
    try:
        _ip("netns", "add", names["db"])
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot create network namespaces here: {getattr(exc, 'stderr', exc)}")
    try:
        for i, (role, ns) in enumerate(names.items(), start=1):
            if role != "db":
                _ip("netns", "add", ns)
            outer, inner = f"v{tag}{role}o", f"v{tag}{role}i"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("addr", "add", f"10.{subnet}.{i}.1/24", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("-n", ns, "addr", "add", f"10.{subnet}.{i}.2/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"10.{subnet}.{i}.1")
            addrs[role] = f"10.{subnet}.{i}.2"
        with open("/proc/sys/net/ipv4/ip_forward", "w") as fh:
            fh.write("1")
        yield names, addrs
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_server_and_workers_on_separate_hosts(hosts, tmp_path, db_name):
    names, addrs = hosts
    server = subprocess.Popen(
        ["ip", "netns", "exec", names["db"], sys.executable, "-m", "secantus", "--host", addrs["db"], "--port",
         "27017", "--storage-path", str(tmp_path / "db")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"mongodb://{addrs['db']}:27017"
    workers = []
    try:
        wait_until(lambda: subprocess.run(["ip", "netns", "exec", names["w1"], sys.executable, "-c",
                                            f"import socket; socket.create_connection(('{addrs['db']}', 27017), 1)"],
                                           capture_output=True).returncode == 0, 30, "the server in its namespace")
        store = Store(url, db=db_name)  # the coordinator, in the root namespace
        coord = Coordinator(store, "hosts", compile_space(objectives.space), tpe.suggest, StopRules(40),
                            CoordinatorConfig(seed=2, workers=2), objective=OBJECTIVE)
        coord.start()
        env = worker_env(HYPERDIST_TEST_DELAY="0.05")
        workers = [subprocess.Popen(
            ["ip", "netns", "exec", names[role], sys.executable, "-m", "hyperdist", "worker", "--mongo", url,
             "--db", db_name, "--exp", "hosts", "--allow", str(TESTS / "objectives.py"), "--idle-timeout", "30"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for role in ("w1", "w2")]
        assert coord.run().finished == 40
        for w in workers:
            out, _ = w.communicate(timeout=60)
            assert w.returncode == 0, out
        history = store.history("hosts")
        assert len(history) == 40 and all(d["state"] == "DONE" for d in history)
        assert len({d["owner"] for d in history}) == 2  # both workers, each from its own namespace, took trials
        store.close()
    finally:
        for w in workers:
            w.kill()
        server.terminate()
        server.wait(15)
