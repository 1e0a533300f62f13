"""What the dashboard tests share: real searches run through the CLI, and the dashboard as a process."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from harness import TESTS, worker_env

OBJECTIVE, SPACE = f"{TESTS / 'objectives.py'}:views", f"{TESTS / 'objectives.py'}:views_space"


def search(mongo_url: str | None, db: str, exp: str, max_evals: int, logs: Path, *, workers: int = 2,
           delay: float = 0.0, wait: bool = True) -> subprocess.Popen:
    """`hyperdist search` of tests/objectives.py:views (conditional space, failures, median pruning);
    without a URL, on the local server in `logs`."""
    where = ["--mongo", mongo_url, "--db", db] if mongo_url else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperdist", "search", OBJECTIVE, "--space", SPACE, "--max-evals", str(max_evals),
         "--workers", str(workers), *where, "--exp", exp, "--pruner", "median",
         "--no-progress", "--data-dir", str(logs)],
        env=worker_env(HYPERDIST_TEST_DELAY=str(delay)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    return proc


@contextmanager
def dashboard(mongo_url: str | None, db: str, *args: str) -> Iterator[str]:
    """`hyperdist dashboard --port 0` as a process; yields its base URL, read from what it prints."""
    where = ["--mongo", mongo_url, "--db", db] if mongo_url else []
    proc = subprocess.Popen([sys.executable, "-m", "hyperdist", "dashboard", "--port", "0", *where,
                             "--interval", "1", *args],
                            env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        found = re.search(r" at (http://[^/\s]+)", line)
        assert found, f"dashboard did not start: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
        base = found.group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/api/experiments", timeout=10).read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "dashboard did not answer within 30 s"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(base: str, path: str, headers: dict | None = None) -> tuple[int, Any]:
    """(status, parsed JSON or text) of a GET."""
    request = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, body = r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body
