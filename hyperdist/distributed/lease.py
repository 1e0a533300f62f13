"""A coordinator's lease on its experiment: one coordinator writes to an experiment at a time.

The lease is renewed once a third of it has passed, checked before each write. A coordinator that
stalled past its lease (SIGSTOP, swapping, a suspended laptop, a long outage) may wake up after
another one took over: it then finds the lease gone before its next write (LeaseLost) and writes
nothing more, neither state nor trials nor snapshot chunks. State updates are conditioned on the
holder in the store too, so one racing the takeover matches nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

from hyperdist.errors import CoordinatorBusy, LeaseLost
from hyperdist.store import Store
from hyperdist.store.experiments import holder_gone

log = logging.getLogger("hyperdist.coordinator")


class Lease:
    def __init__(self, store: Store, exp_key: str, seconds: float) -> None:
        self.store, self.exp_key, self.seconds = store, exp_key, seconds
        self.owner = f"coordinator:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lost: str | None = None  # who took the lease over ("" if it ended since); then nothing is written
        self._renewed = 0.0

    def acquire(self) -> None:
        """Take the lease, also from a holder on this host whose process is gone."""
        try:
            self.store.acquire_coordinator(self.exp_key, self.owner, self.seconds)
        except CoordinatorBusy:
            holder = self.store.coordinator_owner(self.exp_key)
            if not holder_gone(holder):
                raise
            log.warning("taking over from coordinator %s: its process no longer exists", holder)
            self.store.acquire_coordinator(self.exp_key, self.owner, self.seconds, steal_from=holder)
        self._renewed = time.monotonic()

    def hold(self) -> None:
        """Before a write: renew once a third of the lease has passed; LeaseLost if another has it."""
        if self.lost is not None:
            raise LeaseLost(self._lost_text())
        now = time.monotonic()
        if now - self._renewed <= self.seconds / 3:
            return
        if not self.store.renew_coordinator(self.exp_key, self.owner, self.seconds):
            self._lose()
        self._renewed = now

    def update(self, **fields: Any) -> None:
        """Write experiment fields, only while this coordinator holds the lease."""
        self.hold()
        if not self.store.update_experiment(self.exp_key, holder=self.owner, **fields):
            self._lose()

    def release(self) -> None:
        if self.lost is None:
            self.store.release_coordinator(self.exp_key, self.owner)

    def _lose(self) -> None:
        self.lost = self.store.coordinator_owner(self.exp_key) or ""  # "": it took over and ended since
        raise LeaseLost(self._lost_text())

    def _lost_text(self) -> str:
        who = "another coordinator (which has ended since)" if self.lost == "" else f"another coordinator ({self.lost})"
        return (f"{who} took over experiment {self.exp_key!r} after this one's lease ran out; this one stops and "
                "leaves the experiment to it")
