"""What several test modules share: the tests' directory and objective, the environment of the
processes they start, a worker process, a search command line, and waiting for a condition."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

TESTS = Path(__file__).resolve().parent
OBJECTIVE = f"{TESTS / 'objectives.py'}:quadratic"


def worker_env(**extra: str) -> dict[str, str]:
    """This environment with the tests' directory importable and no HYPERDIST_MONGO_URL."""
    # no empty entry: it would mean the working directory, ahead of the standard library
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(TESTS), os.environ.get("PYTHONPATH", "")] if p))
    env.pop("HYPERDIST_MONGO_URL", None)
    env.update(extra)
    return env


def url_with_db(url: str, db: str) -> str:
    """The test server's URL naming database `db` in its path (a URL with options keeps them, and
    the callers pass `db` beside it)."""
    return f"{url.rstrip('/')}/{db}" if "?" not in url else url


def start_worker(url: str, db: str, exp: str, env: dict, *args: str) -> subprocess.Popen:
    """A `hyperdist worker` process allowed to run the tests' objectives, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "hyperdist", "worker", "--mongo", url, "--db", db, "--exp", exp,
         "--allow", str(TESTS / "objectives.py"), "--allow", "objectives", "--idle-timeout", "60", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def search_cmd(*args: str) -> list[str]:
    """`hyperdist search` of the tests' quadratic objective, without a progress bar."""
    return [sys.executable, "-m", "hyperdist", "search", OBJECTIVE, "--space", f"{TESTS / 'objectives.py'}:space",
            "--no-progress", *args]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def all_exit_cleanly(workers: list, timeout: float) -> None:
    """Every worker process ends by itself with status 0; its output is the failure message."""
    for w in workers:
        out, _ = w.communicate(timeout=timeout)
        assert w.returncode == 0, out


def experiment_exists(store: Any, key: str) -> bool:
    return any(e["_id"] == key for e in store.list_experiments())
