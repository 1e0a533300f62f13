"""A process whose objective left a non-daemon thread running still ends (objective/threads.py):
real interpreters, since what is tested is how a process exits."""
from __future__ import annotations

import subprocess
import sys

_PROGRAM = """
import atexit, sys, threading, time
from hyperdist.objective.threads import exit_after_threads

atexit.register(lambda: print("exit handlers ran", flush=True))
stop = threading.Event()
threading.Thread(target=stop.wait, args=(float(sys.argv[1]),), name="uploader").start()
exit_after_threads(int(sys.argv[2]), grace=0.5)
"""


def _run(thread_seconds: float, code: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _PROGRAM, str(thread_seconds), str(code)],
                          capture_output=True, text=True, timeout=60)


def test_a_thread_that_never_ends_is_named_and_left_with_the_exit_code_and_handlers():
    done = _run(3600, 3)
    assert done.returncode == 3
    assert "exit handlers ran" in done.stdout
    assert "waiting up to 0.5 s for thread(s) 'uploader'" in done.stderr
    assert "exiting although thread(s) 'uploader' are still running" in done.stderr


def test_a_thread_that_ends_within_the_grace_is_waited_for():
    done = _run(0.1, 0)
    assert done.returncode == 0
    assert "exit handlers ran" in done.stdout
    assert "still running" not in done.stderr


def test_without_threads_nothing_is_said():
    done = subprocess.run([sys.executable, "-c", "from hyperdist.objective.threads import exit_after_threads\n"
                           "exit_after_threads('a message')"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (1, "a message")
