"""Fixtures: a real MongoDB-wire server (SecantusDB in a temp dir, or HYPERDIST_TEST_MONGO_URL)."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hyperdist.server import start_server, stop_server  # noqa: E402
from hyperdist.store import Store  # noqa: E402


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
    s._client.drop_database(s.db_name)
    s.close()


@pytest.fixture
def mongomock_store():
    import mongomock

    return Store("mongodb://mock", client=mongomock.MongoClient(tz_aware=True))


@pytest.fixture
def db_name() -> str:
    """A database of its own for a test that starts processes of its own."""
    return f"t_{uuid.uuid4().hex[:10]}"
