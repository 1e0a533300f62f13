"""A running trial's heartbeat: the lease that proves a worker is still on it.

While the objective runs, a thread extends the lease of the trial (and of the trials claimed with
it, one token) every third of its length; if the worker dies the lease expires and the trial is
handed out again. A heartbeat that finds the running trial's lease gone marks itself lost and
tells the worker (`on_lost`), which stops what it safely can: its result will not be accepted.
"""
from __future__ import annotations

import logging
import threading

from typing import Any, Callable

from hyperdist.errors import StoreError, redact
from hyperdist.store import Store

log = logging.getLogger("hyperdist.worker")


class Heartbeat(threading.Thread):
    """Extends the trial's lease every third of its length while the objective runs."""

    def __init__(self, store: Store, trial_id: list, token: str, lease_seconds: float,
                 on_lost: Callable[[], Any] = lambda: None) -> None:
        """`trial_id`: the running trial first, then those claimed with it and waiting."""
        super().__init__(daemon=True)
        self.store, self.trial_id, self.token, self.lease_seconds = store, trial_id, token, lease_seconds
        self.on_lost = on_lost
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.lease_seconds / 3):
            try:
                if self.store.heartbeat(self.trial_id, self.token, self.lease_seconds):
                    continue
                # a waiting trial was handed out again (it finds that out when it runs); the running one?
                if len(self.trial_id) > 1 and self.store.heartbeat(self.trial_id[:1], self.token, self.lease_seconds):
                    self.trial_id = self.trial_id[:1]
                    continue
                self.lost = True
                self.on_lost()
                return
            except StoreError as exc:
                log.warning("heartbeat failed: %s", redact(str(exc)))

    def stop(self) -> None:
        self._stop_event.set()
