"""A one-line progress bar with the best loss, drawn only on a terminal.

The objective may print: the bar erases itself before each evaluation and redraws afterwards, so
the objective's lines land on a clean line instead of being spliced into the bar.
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int | None, enabled: bool = True, stream: TextIO | None = None,
                 initial: int = 0, force: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and (force or getattr(self.stream, "isatty", lambda: False)())
        self.total = total
        self.initial = self.done = initial
        self.best: float | None = None
        self.counts: tuple[int, int, int] | None = None  # ok, failed, pruned
        self.started = time.monotonic()
        self._drawn = False

    def update(self, done: int, best: float | None, counts: tuple[int, int, int] | None = None) -> None:
        """`counts`: finished trials as (ok, failed, pruned), shown beside the best loss."""
        self.done, self.best = done, best
        if counts is not None:
            self.counts = counts
        self.draw()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        best = "-" if self.best is None else f"{self.best:.6g}"
        tail = f" {self.done}/{self.total or '?'} [{_clock(elapsed)}"
        if self.total and rate > 0:
            tail += f"<{_clock((self.total - self.done) / rate)}"
        tail += f", {rate:.2f} trials/s, best loss: {best}"
        if self.counts is not None:
            tail += ", {} ok, {} failed, {} pruned".format(*self.counts)
        tail += "]"
        room = shutil.get_terminal_size((100, 20)).columns - len(tail) - 8
        if not self.total or room < 10:  # no room for a bar: a wrapped line could not be redrawn
            return tail.lstrip()
        width = min(40, room)
        frac = min(1.0, self.done / self.total)
        filled = int(frac * width)
        return f"{frac:4.0%}|{'█' * filled}{' ' * (width - filled)}|{tail}"

    def draw(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K" + self.line())
            self.stream.flush()
            self._drawn = True

    def clear(self) -> None:
        """Erase the bar so that output from the objective starts at column 0."""
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def close(self) -> None:
        """Leave the last state drawn on its own line; later messages are not followed by a bar."""
        if self.enabled:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = self._drawn = False


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"
