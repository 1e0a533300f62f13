"""How a coordinator paces itself: when to tick next, and how many trials to keep waiting.

Pure bookkeeping over clock readings, so it can be driven by tests and benchmarks without a
database. Each tick costs the server a read and usually an insert, so ticks should each find
several finished trials; but the queue of waiting trials must never run dry between two ticks, or
workers idle. Both follow from the recent finishing rate (measurements: docs/performance.md).
"""
from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field


@dataclass
class Pacing:
    workers: int
    queue: int | None = None          # trials kept waiting; None: 2 per worker (at least 4), grown by the rate
    poll_interval: float = 0.05       # the shortest pause between ticks
    max_poll_interval: float = 1.0
    # of the waiting queue, drained between two ticks at the recent rate. At 2/3 the queue ran dry
    # between ticks (workers found it empty on ~60% of their reads while the coordinator slept half
    # the run); 1/3 ran a 500-trial null search 45% faster end to end at 4 workers (docs/performance.md)
    drain: float = 1 / 3
    window: int = 32                  # finished trials the rate is measured over
    _times: collections.deque = field(init=False, repr=False)
    _tick_seconds: float = field(init=False, default=0.0)  # moving average of a tick's duration
    _batched_until: int = field(init=False, default=0)      # batches claimed: count NEW until this many finished

    def __post_init__(self) -> None:
        self.workers = max(1, self.workers)
        self.grows = self.queue is None
        self.queue = max(4, 2 * self.workers) if self.queue is None else max(0, self.queue)
        self._times = collections.deque(maxlen=self.window)

    def finished(self, finished_so_far: int, batch: int = 1, now: float | None = None) -> None:
        """One trial finished (claimed in a batch of `batch`); `finished_so_far` includes it."""
        self._times.append(time.monotonic() if now is None else now)
        if batch > 1:  # workers claim in batches: the queue is counted, not inferred, for a while
            self._batched_until = finished_so_far + self.window

    def ticked(self, seconds: float) -> None:
        self._tick_seconds = 0.8 * self._tick_seconds + 0.2 * seconds

    def rate(self, now: float | None = None) -> float | None:
        """Trials finished per second, over the last `window`."""
        times = self._times
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        now = time.monotonic() if now is None else now
        return (len(times) - 1) / (max(now, times[-1]) - times[0])

    def pause(self) -> float:
        """Seconds until the next tick: long enough that a tick usually finds several finished
        trials, short enough that the waiting queue, `drain` of it gone at the recent rate, never
        runs dry."""
        rate = self.rate()
        if rate is None:
            return self.poll_interval
        return min(max(self.poll_interval, self.drain * max(1, self.waiting()) / rate), self.max_poll_interval)

    def waiting(self) -> int:
        """Trials to keep waiting: `queue`, or (by default) more when trials finish so fast that more
        than `drain` of it would go before the next tick could refill it (short trials finish many
        times per tick: docs/performance.md, "Where the coordinator's time goes")."""
        rate, queue = self.rate(), self.queue or 0  # an int from __post_init__ on
        if not self.grows or rate is None:
            return queue
        need = math.ceil(rate * (self.poll_interval + self._tick_seconds) / (1 - self.drain))
        return min(max(queue, need), 4 * queue)

    def counts_new(self, finished_so_far: int) -> bool:
        """Whether to count the NEW trials (one more command per tick) instead of inferring them
        from the open ones: while workers claim short trials in batches they hold several each."""
        return self.grows and finished_so_far < self._batched_until

    def wanted(self, open_trials: int, new_trials: int | None = None) -> int:
        """New suggestions this tick: enough for `waiting()` NEW trials beside one running per
        worker. A queue given explicitly bounds the open trials at `workers + queue` (what TPE sees
        pending); `new_trials`, when counted, replaces the inference."""
        if new_trials is not None:
            return self.waiting() - new_trials
        return self.workers + self.waiting() - open_trials
