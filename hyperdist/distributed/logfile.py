"""A bound on the size of a worker's log file.

Why: a worker that a search starts writes its stdout and stderr to a log file
(server/launcher.py), and an objective printing megabytes per trial would fill the disk over a
long search. How: between trials the worker looks at the file's size and, past the limit, renames
it to NAME.1 (replacing the previous NAME.1) and goes on in a fresh NAME, so at most about twice
the limit stays on disk and the newest lines, the ones the search quotes when a worker stops, are
always in NAME. Nothing runs during a trial: the objective writes to the file directly, as do the
processes it starts (which keep writing to the renamed file). A worker whose stdout and stderr are
not one regular file (a terminal, a pipe, two files) is left alone.
"""
from __future__ import annotations

import logging
import os
import stat
import sys

from hyperdist.errors import HyperdistError

LIMIT_ENV = "HYPERDIST_WORKER_LOG_LIMIT"
DEFAULT_LIMIT = 50 << 20  # bytes in one log file before it is rotated; 0: never

log = logging.getLogger("hyperdist.worker")


def log_limit() -> int:
    raw = os.environ.get(LIMIT_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_LIMIT
    except ValueError:
        value = -1
    if value < 0:
        raise HyperdistError(f"{LIMIT_ENV}={raw!r}: expected a number of bytes, 0 or more (0: never rotate)")
    return value


def _log_path() -> str | None:
    """The path of the one regular file that fds 1 and 2 both write to, if that is what they are."""
    try:
        out, err = os.fstat(1), os.fstat(2)
        path = os.readlink("/proc/self/fd/1")  # Linux; elsewhere the log is left alone
        named = os.stat(path)
    except OSError:
        return None
    same = (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino) == (named.st_dev, named.st_ino)
    return path if stat.S_ISREG(out.st_mode) and same else None


class LogRotation:
    """`rotate_if_full()` after each trial; see the module docstring."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = log_limit() if limit is None else limit
        self.path = _log_path() if self.limit > 0 else None

    def rotate_if_full(self) -> None:
        if self.path is None:
            return
        try:
            size = os.fstat(1).st_size
            if size < self.limit:
                return
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.replace(self.path, self.path + ".1")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        except (OSError, ValueError) as exc:  # a log that cannot be rotated is not worth stopping a worker for
            log.warning("could not rotate the log %s (%s); it keeps growing", self.path, exc)
            self.path = None
            return
        log.info("log rotated at %d bytes (%s=%d): the earlier lines are in %s.1", size, LIMIT_ENV, self.limit,
                 os.path.basename(self.path))
