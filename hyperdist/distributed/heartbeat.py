"""A running trial's heartbeat: the lease that proves a worker is still on it.

While the objective runs, a thread extends the lease of the trial (and of the trials claimed with
it, one token) every third of its length; if the worker dies the lease expires and the trial is
handed out again. A heartbeat that finds the lease gone marks itself lost, and the worker then
knows its result will not be accepted.
"""
from __future__ import annotations

import logging
import threading

from hyperdist.errors import StoreError, redact
from hyperdist.store import Store

log = logging.getLogger("hyperdist.worker")


class Heartbeat(threading.Thread):
    """Extends the trial's lease every third of its length while the objective runs."""

    def __init__(self, store: Store, trial_id: list, token: str, lease_seconds: float) -> None:
        super().__init__(daemon=True)
        self.store, self.trial_id, self.token, self.lease_seconds = store, trial_id, token, lease_seconds
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.lease_seconds / 3):
            try:
                if not self.store.heartbeat(self.trial_id, self.token, self.lease_seconds):
                    self.lost = True
                    return
            except StoreError as exc:
                log.warning("heartbeat failed: %s", redact(str(exc)))

    def stop(self) -> None:
        self._stop_event.set()
