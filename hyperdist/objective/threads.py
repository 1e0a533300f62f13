"""Ending a process whose objective left threads running.

Python waits for every non-daemon thread before it exits. A thread that an objective's module
starts at import (an uploader, a watchdog, a metrics pusher that never ends) would keep a finished
`hyperdist search` or worker alive forever after its last line, with nothing on the screen saying
why. A command waits a short while for such threads, says which it waits for, and then ends
anyway, after the exit handlers (the objective's own and MLflow's) have run.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import NoReturn

GRACE_S = 3.0  # long enough for an uploader to finish its last batch, short enough to notice


def _running() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def _names(threads: list[threading.Thread]) -> str:
    return ", ".join(repr(t.name) for t in threads)


def exit_after_threads(code: object, grace: float = GRACE_S) -> NoReturn:
    """Exit with `code` (as `sys.exit` takes it), waiting at most `grace` seconds for non-daemon
    threads someone else started; one line on stderr names those it waits for and leaves."""
    threads = _running()
    if threads:
        print(f"hyperdist: waiting up to {grace:g} s for thread(s) {_names(threads)} "
              "(started by the objective; not daemon threads) before exiting", file=sys.stderr, flush=True)
        deadline = time.monotonic() + grace
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        left = _running()
        if left:
            print(f"hyperdist: exiting although thread(s) {_names(left)} are still running: Python would wait "
                  "for them forever (make them daemon threads, or stop them when the objective is done)",
                  file=sys.stderr, flush=True)
            atexit._run_exitfuncs()  # what a normal exit runs after joining the threads, which it cannot
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
                    pass
            os._exit(_status(code))
    raise SystemExit(code)


def _status(code: object) -> int:
    """The process status `sys.exit(code)` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr, flush=True)
    return 1
