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
        self.started = time.monotonic()
        self._drawn = False

    def update(self, done: int, best: float | None) -> None:
        self.done, self.best = done, best
        self.draw()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        best = "-" if self.best is None else f"{self.best:.6g}"
        tail = f" {self.done}/{self.total or '?'} [{_clock(elapsed)}"
        if self.total and rate > 0:
            tail += f"<{_clock((self.total - self.done) / rate)}"
        tail += f", {rate:.2f} trials/s, best loss: {best}]"
        if not self.total:
            return tail.lstrip()
        width = max(10, min(40, shutil.get_terminal_size((100, 20)).columns - len(tail) - 8))
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
        if self.enabled:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"
