"""Fixtures: a real MongoDB-wire server (SecantusDB in a temp dir, or HYPERDIST_TEST_MONGO_URL)."""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# A local server a command under test starts outlives it by this long (default 300 s), not longer.
os.environ.setdefault("HYPERDIST_SERVER_IDLE", "10")
# The signal tests send SIGHUP to the commands they start, which inherit this process's disposition:
# under `nohup` (SIG_IGN) a command rightly leaves it ignored, and those tests would see no hangup.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

from hyperdist.server.embedded import LocalServer, start_server, stop_server  # noqa: E402
from hyperdist.store import Store  # noqa: E402
from hyperdist.store import testing as raw  # noqa: E402


# Fixtures that put a real server behind a test; a test with none of them (and not marked slow) is
# in the unit tier, which .ci/run runs first so that a broken unit fails in a minute, not after ten.
_SERVER_FIXTURES = {"mongo_url", "store", "local_servers", "auth_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        wire = item.get_closest_marker("slow") is not None or bool(_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())))
        item.add_marker(pytest.mark.wire if wire else pytest.mark.unit)


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory):
    url = os.environ.get("HYPERDIST_TEST_MONGO_URL")
    if url:
        yield url
        return
    data_dir = tmp_path_factory.mktemp("secantus")
    server = start_server(data_dir)
    yield server.url
    stop_server(data_dir)


@pytest.fixture
def store(mongo_url: str):
    s = Store(mongo_url, db=f"t_{uuid.uuid4().hex[:10]}")
    yield s
    for name in raw.database(s).list_collection_names():  # SecantusDB drops a full collection 5x slower than it
        raw.database(s)[name].delete_many({})             # deletes the documents (docs/store-notes.md)
    raw.client(s).drop_database(s.db_name)
    s.close()


@pytest.fixture
def mongomock_store():
    import mongomock

    return Store("mongodb://mock", client=mongomock.MongoClient(tz_aware=True))


@pytest.fixture
def db_name() -> str:
    """A database of its own for a test that starts processes of its own."""
    return f"t_{uuid.uuid4().hex[:10]}"


def _gone(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid  # our child: reap it
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


class LocalServers:
    """Extra servers of a test's own: start (or restart) one on a data dir, or kill -9 one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[LocalServer] = []

    def start(self, data_dir: Path | None = None, **kwargs) -> LocalServer:
        """start_server on data_dir (default: a new one under the test's tmp_path)."""
        server = start_server(Path(data_dir or self.root / f"server{len(self.started)}"), **kwargs)
        self.started.append(server)
        return server

    def kill(self, server: LocalServer, timeout: float = 10) -> None:
        """SIGKILL, then wait until the process is gone: until then its port still answers, and a
        start on the same data dir would hand the dying server back."""
        if _gone(server.pid):
            return
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while not _gone(server.pid):
            assert time.monotonic() < deadline, f"server {server.pid} outlived SIGKILL"
            time.sleep(0.02)

    def kill_all(self) -> None:
        """Every server started here, even one whose server.json a test removed."""
        for server in self.started:
            self.kill(server)
            stop_server(server.data_dir)  # removes server.json


@pytest.fixture
def local_servers(tmp_path: Path) -> Iterator[LocalServers]:
    """Servers a test may kill and restart; all are killed at the end (their data is thrown away,
    and a clean SecantusDB shutdown takes 2-4 s)."""
    servers = LocalServers(tmp_path)
    yield servers
    servers.kill_all()
