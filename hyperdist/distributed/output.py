"""A cap on what one trial's output may write into a worker's log file.

Why: a worker that a search starts writes its stdout and stderr to a log file
(server/launcher.py), and an objective printing megabytes per trial would fill the disk over a
long search. How: while a trial runs, file descriptors 1 and 2 go into a pipe (so the objective's
prints, C libraries and the processes it starts are all counted) that a thread copies to the log
as it comes, up to half the cap; beyond that only the last half is kept, and when the trial ends
one line says how much was left out, followed by those last lines, which hold the traceback or
the final metrics. The worker's own log lines bypass the pipe. A worker whose stdout and stderr
are not one regular file (a terminal, or two files) is left alone.
"""
from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from contextlib import contextmanager
from typing import IO, Iterator

from hyperdist.errors import HyperdistError

LIMIT_ENV = "HYPERDIST_TRIAL_OUTPUT_LIMIT"
DEFAULT_LIMIT = 1 << 20  # bytes of one trial's output in the log; 0: no cap


def output_limit() -> int:
    raw = os.environ.get(LIMIT_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_LIMIT
    except ValueError:
        value = -1
    if value < 0:
        raise HyperdistError(f"{LIMIT_ENV}={raw!r}: expected a number of bytes, 0 or more (0: no cap)")
    return value


def _same_file() -> bool:
    """fds 1 and 2 are one regular file: the log a search (or `> log 2>&1`) gave the worker."""
    try:
        out, err = os.fstat(1), os.fstat(2)
    except OSError:
        return False
    return stat.S_ISREG(out.st_mode) and (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class TrialOutput:
    """`with output.trial(tid):` around each evaluation; see the module docstring."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = output_limit() if limit is None else limit
        self.active = self.limit > 0 and _same_file()
        self._log_stream: IO[str] | None = None
        if self.active:  # the worker's own lines go to the log directly, not through a trial's cap
            self._log_stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.__stderr__):
                    handler.setStream(self._log_stream)

    @contextmanager
    def trial(self, tid: int) -> Iterator[None]:
        if not self.active:
            yield
            return
        _flush()
        read, write = os.pipe()
        copier = _Copier(read, os.dup(1), self.limit)
        copier.start()
        saved = os.dup(1), os.dup(2)
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            copier.join(5)  # at once, unless a process the objective started still holds the pipe
            copier.finish(tid)


class _Copier(threading.Thread):
    """Copies a trial's output to the log up to half the limit, then keeps only the last half."""

    def __init__(self, read: int, log: int, limit: int) -> None:
        super().__init__(name="hyperdist-trial-output", daemon=True)
        self.read, self.log, self.limit = read, log, limit
        self.head = limit // 2
        self.written = self.dropped = 0
        self.tail = bytearray()
        self.lock = threading.Lock()
        self.done = False

    def run(self) -> None:
        try:
            while chunk := os.read(self.read, 1 << 16):
                with self.lock:
                    if self.done:  # output after the trial ended (a process it left running)
                        continue
                    if self.written < self.head:
                        part = chunk[:self.head - self.written]
                        _write(self.log, part)
                        self.written += len(part)
                        chunk = chunk[len(part):]
                    self.tail += chunk
                    over = len(self.tail) - (self.limit - self.head)
                    if over > 0:
                        self.dropped += over
                        del self.tail[:over]
        finally:
            os.close(self.read)

    def finish(self, tid: int) -> None:
        with self.lock:
            self.done = True
            tail = bytes(self.tail)
            if self.dropped:
                start = tail.find(b"\n") + 1  # whole lines after the gap
                self.dropped, tail = self.dropped + start, tail[start:]
                _write(self.log, f"\n... {self.dropped} bytes of trial {tid}'s output left out (at most {self.limit} "
                                 f"bytes per trial: {LIMIT_ENV}) ...\n".encode())
            _write(self.log, tail)
            os.close(self.log)
