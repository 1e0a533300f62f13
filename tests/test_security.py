"""Authentication through the URL, and credentials never shown, against a server started with --auth."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hyperdist.errors import StoreError
from hyperdist.server.embedded import start_server, stop_server
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import TESTS, worker_env

pytestmark = pytest.mark.slow
PASSWORD = "pa55-w0rd-xyz"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    import os

    if os.environ.get("HYPERDIST_TEST_MONGO_URL"):
        pytest.skip("needs a server this test starts itself with --auth")
    data = tmp_path_factory.mktemp("auth")
    open_server = start_server(data)
    admin = Store(open_server.url, db="admin")
    raw.database(admin).command("createUser", "alice", pwd=PASSWORD, roles=["root"])
    admin.close()
    stop_server(data)
    server = start_server(data, auth=True)
    yield server
    stop_server(data)


def _url(server, user: str = "alice", password: str = PASSWORD) -> str:
    host = server.url.split("//", 1)[1]
    return f"mongodb://{user}:{password}@{host}/?authSource=admin"


def test_credentials_in_the_url_authenticate(auth_server):
    store = Store(_url(auth_server), db="secure")
    store.create_experiment("e", space={}, space_hash="h", objective=None, algo={}, max_evals=1, seed=0)
    assert store.get_experiment("e")["max_evals"] == 1
    store.close()


def test_missing_or_wrong_credentials_fail_without_showing_the_password(auth_server):
    with pytest.raises(StoreError) as no_auth:
        Store(auth_server.url, db="secure", timeout_ms=2000)
    assert "failed" in str(no_auth.value)
    with pytest.raises(StoreError) as wrong:
        Store(_url(auth_server, password="not-" + PASSWORD), db="secure", timeout_ms=2000)
    assert PASSWORD not in str(wrong.value) and "***" in str(wrong.value)
    # one readable line: the server's message and what to check, not its whole reply
    assert "authentication failed (code 18): check the user, the password" in str(wrong.value)
    assert "clusterTime" not in str(wrong.value) and "signature" not in str(wrong.value)


def test_an_unreachable_server_is_one_line_without_the_topology_dump():
    with pytest.raises(StoreError) as gone:
        Store(f"mongodb://alice:{PASSWORD}@127.0.0.1:1/", db="x", timeout_ms=500)
    text = str(gone.value)
    assert "cannot reach the server (127.0.0.1:1: " in text and "is the server running" in text
    assert "Topology" not in text and PASSWORD not in text and len(text) < 300


def test_search_and_workers_on_an_authenticated_server_never_log_the_password(auth_server, tmp_path):
    data = tmp_path / "hd"
    run = subprocess.run(
        [sys.executable, "-m", "hyperdist", "search", f"{TESTS / 'objectives.py'}:quadratic", "--space",
         f"{TESTS / 'objectives.py'}:space", "--max-evals", "6", "--workers", "2", "--mongo", _url(auth_server),
         "--db", "secure_search", "--data-dir", str(data), "--no-progress"],
        env=worker_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["loss"] >= 0
    logs = run.stderr + run.stdout + "".join(p.read_text() for p in data.glob("worker-*.log"))
    assert "trial" in logs and PASSWORD not in logs


def test_search_without_local_workers_prints_the_worker_command_without_the_password(auth_server, tmp_path):
    """`--workers 0`: after ~10 s with no worker the search prints the command to start one (the
    password redacted) and keeps waiting; that command, with the password put back, finishes it."""
    import shlex
    import time

    search = subprocess.Popen(
        [sys.executable, "-m", "hyperdist", "search", f"{TESTS / 'objectives.py'}:quadratic", "--space",
         f"{TESTS / 'objectives.py'}:space", "--max-evals", "5", "--workers", "0", "--mongo", _url(auth_server),
         "--db", "hinted", "--exp", "hinted", "--data-dir", str(tmp_path / "hd"), "--no-progress"],
        env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        seen = []
        for line in search.stderr:
            seen.append(line)
            if line.strip().startswith("hyperdist worker "):
                break
        command = seen[-1].strip()
        assert PASSWORD not in "".join(seen) and "mongodb://***@" in command, seen
        assert "--exp hinted" in command and "--db hinted" in command and "--allow " in command
        args = shlex.split(command.replace("***", f"alice:{PASSWORD}"))[1:]
        time.sleep(1)
        assert search.poll() is None  # still waiting for a worker
        worker = subprocess.Popen([sys.executable, "-m", "hyperdist", *args, "--idle-timeout", "30"], env=worker_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out, err = search.communicate(timeout=120)
        assert search.returncode == 0, err
        assert json.loads(out)["loss"] >= 0 and PASSWORD not in err
        assert worker.wait(60) == 0
    finally:
        search.kill()
        if worker is not None:
            worker.kill()


def test_dashboard_with_a_read_only_user_never_shows_the_password(auth_server):
    """A viewer with the `read` role only: every page and API answer works and none shows the password."""
    from dashboard_support import dashboard, get

    admin = Store(_url(auth_server), db="admin")
    raw.database(admin).command("createUser", "viewer", pwd=PASSWORD, roles=[{"role": "read", "db": "secure_view"}])
    admin.close()
    store = Store(_url(auth_server), db="secure_view")
    store.create_experiment("e", space={"format": "hyperdist.space/1", "root": {}}, space_hash="h",
                            objective=None, algo={}, max_evals=1, seed=0)
    store.close()
    with dashboard(_url(auth_server, user="viewer"), "secure_view") as base:
        answers = [get(base, path) for path in ("/", "/experiments/e", "/api/experiments", "/api/experiments/e",
                                                "/api/experiments/nope")]
    assert [status for status, _ in answers] == [200, 200, 200, 200, 404]
    assert PASSWORD not in repr(answers) and "mongodb://***@" in answers[0][1]
