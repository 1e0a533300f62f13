"""Local workers forked from `hyperdist search` before it connects, so they skip their imports.

A fresh interpreter costs each worker ~0.33 s of CPU in imports (numpy, pymongo, click, hyperdist):
with 8 workers on 2 cores that was ~40% of all the CPU of a 500-trial null search
(docs/performance.md). The search forks its workers first thing, while it has no thread, no
connection and no user code loaded; each child leaves the terminal's session and waits on a
pipe. Once the experiment exists, `start` sends a child its `hyperdist worker` arguments and
environment; a child whose pipe closes unused exits. Linux only: elsewhere `prefork` returns
None and the launcher starts fresh interpreters as before. A forked worker keeps the search's
command line in `ps -f` (its name, `ps -e` and `top`, is hd-worker).
"""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from hyperdist.objective.threads import exit_after_threads
from hyperdist.objective.processes import die_with_parent


class Forked:
    """A forked worker, with the part of subprocess.Popen that the launcher and the watch use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): gone, status unknown, as Popen
                self.returncode = 0
                return 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Prefork:
    """n children waiting for their worker arguments (`start`); each then calls `run(args)` (the
    `hyperdist worker` command, given by the CLI); `close` releases the unused ones."""

    def __init__(self, n: int, run: Callable[[list[str]], Any]) -> None:
        self._waiting: list[tuple[int, int]] = []  # (pid, write end of its pipe)
        sys.stdout.flush()  # nothing buffered is copied into the children to be written twice
        sys.stderr.flush()
        # what is imported so far is frozen for the children: their collections never walk it, which
        # halved each forked worker's own CPU (0.07 -> 0.03 s before its trials; docs/performance.md)
        gc.freeze()
        for _ in range(n):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns into the search
                os.close(write)
                for _, other in self._waiting:
                    os.close(other)
                _child(read, run)
            os.close(read)
            self._waiting.append((pid, write))
        gc.unfreeze()  # the search itself collects as before

    def __len__(self) -> int:
        return len(self._waiting)

    def start(self, args: list[str], env: dict[str, str], log: Path | None) -> Forked:
        """Turn the next waiting child into `hyperdist worker ARGS` with `env`, logging to `log`."""
        pid, write = self._waiting.pop(0)
        message = json.dumps({"args": args, "env": env, "log": str(log) if log else os.devnull}).encode()
        with os.fdopen(write, "wb") as pipe:
            pipe.write(message)
        return Forked(pid)

    def close(self) -> None:
        """Children not started exit (their pipe closes), and are reaped."""
        for pid, write in self._waiting:
            os.close(write)
            os.waitpid(pid, 0)
        self._waiting = []


def prefork(n: int, run: Callable[[list[str]], Any]) -> Prefork | None:
    """n waiting children, or None where forking is not used (not Linux, no workers, or threads
    already running: a fork copies only the calling thread, whatever locks the others held)."""
    if n <= 0 or not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None
    return Prefork(n, run)


def _name(name: str) -> None:
    """The name `ps -e` and `top` show (the command line stays the search's, which it was forked from)."""
    import ctypes

    ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _child(read: int, run: Callable[[list[str]], Any]) -> Any:
    """Wait for the worker's arguments, then run it; exits with the worker's code."""
    code: Any = 0
    try:
        os.setsid()  # its own session: the terminal's Ctrl-C is the search's to hand on
        die_with_parent()  # SIGTERM when the search dies, however it dies
        if os.getppid() == 1:  # it died before that
            os._exit(0)
        _name("hd-worker")
        if "numpy" in sys.modules:  # its global generator is copied by fork (`random` reseeds itself):
            sys.modules["numpy"].random.seed()  # an objective drawing from it must not repeat its siblings
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        if not chunks:  # not needed: the search ended or started fewer workers
            os._exit(0)
        job = json.loads(b"".join(chunks))
        os.environ.clear()
        os.environ.update(job["env"])
        log = os.open(job["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        run(job["args"])
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 - reported in the worker's log, which the search shows
        import traceback

        traceback.print_exc()
        code = 1
    # a normal exit runs the atexit handlers (the worker's and its objective's) and flushes; the
    # search's frames above this call are never returned into
    exit_after_threads(code)
