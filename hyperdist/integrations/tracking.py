"""Mirroring finished trials to an experiment tracker (MLflow), without ever holding up the search.

Who logs: the process that runs the search (the coordinator, or `fmin` in one process), not the
workers. The coordinator already reads every finished trial exactly once (`Coordinator._record`),
so one process holds the tracker's connection and credentials, workers on other machines need
neither the tracker's library nor a route to its server, and a trial run twice after a lost
lease is still logged once (only the accepted report finishes a trial).

How: the coordinator hands each finished trial's id to a `Mirror`, whose own thread reads the
whole trial and logs it. A tracking server that is slow or down costs the search nothing: the
mirror warns once, keeps the trials pending and tries again with backoff. Every trial stays in
MongoDB regardless, and a tracker tells which trials it has (`TrialLog.open`), so a resumed search
or `hyperdist mlflow EXP` logs exactly the ones still missing.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import shlex
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from hyperdist.errors import HyperdistError, redact
from hyperdist.objective.result import STATUS_FAIL, finite, ok_loss
from hyperdist.space.compiled import SearchSpace
from hyperdist.store.document import FINISHED, STATE_FIELDS, ExperimentState, TrialRecord, utc

log = logging.getLogger("hyperdist.tracking")


@dataclass
class LoggedTrial:
    """A finished trial as a tracker sees it: parameters as a person reads them (choices as their
    options, hyperdist/space/compiled.py `readable`), outcome, timing, and where it ran."""

    tid: int
    params: dict[str, Any]
    status: str
    loss: float | None
    started: dt.datetime | None
    finished: dt.datetime | None
    worker: str | None
    device: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    error: dict | None = None

    @property
    def ok_loss(self) -> float | None:
        """Its loss when it counts as a result (objective/result.py `ok_loss`)."""
        return ok_loss({"status": self.status, "loss": self.loss})

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return (utc(self.finished) - utc(self.started)).total_seconds()


def record_from_store(rec: TrialRecord, space: SearchSpace) -> LoggedTrial:
    """From a trial of a distributed experiment (hyperdist/store)."""
    return _record(rec.tid, rec.params, rec.result, rec.error, rec.claimed, rec.finished, rec.owner, rec.device,
                   rec.intermediate, space)


def record_from_trial(trial: dict, space: SearchSpace) -> LoggedTrial:
    """From an in-memory `Trials` entry of a one-process `fmin`."""
    return _record(trial["tid"], trial["params"], trial["result"], trial.get("error"), trial.get("book_time"),
                   trial.get("refresh_time"), f"{socket.gethostname()}:{os.getpid()}", None,
                   trial.get("intermediate") or {}, space)


def _record(tid: int, params: dict, result: dict, error: dict | None, started: Any, finished: Any,
            worker: str | None, device: str | None, intermediate: dict, space: SearchSpace) -> LoggedTrial:
    loss = finite(result.get("loss"))
    status = str(result.get("status") or STATUS_FAIL) if error is None else STATUS_FAIL
    return LoggedTrial(int(tid), space.readable(params), status, loss, started, finished, worker, device,
                       {int(k): float(v) for k, v in intermediate.items()}, error)


class TrialLog(Protocol):
    """A tracker: what `log=` accepts besides "mlflow". Each call may raise; the mirror retries it."""

    def open(self, exp_key: str | None, info: dict[str, Any]) -> set[int]:
        """Start (or find again) the experiment's run; return the tids already logged."""

    def log(self, record: LoggedTrial) -> None:
        """Log one finished trial; called again with the same trial if it raised."""

    def close(self, state: str) -> None:
        """The search ended ("done") or was interrupted ("stopped")."""


def make_log(spec: Any) -> TrialLog | None:
    """`log=` of fmin and `--log` of the CLI: None, "mlflow", or an object with TrialLog's methods."""
    if spec is None:
        return None
    if spec == "mlflow":
        from hyperdist.integrations.mlflow import MlflowLog

        return MlflowLog()
    if all(callable(getattr(spec, m, None)) for m in ("open", "log", "close")):
        return spec
    raise HyperdistError(f"log={spec!r}: expected 'mlflow' or an object with open, log and close methods "
                         "(hyperdist.integrations.tracking.TrialLog)")


class Mirror:
    """Feeds a TrialLog from a thread of its own; see the module docstring for why."""

    RETRY_FIRST, RETRY_MAX = 2.0, 60.0

    def __init__(self, tlog: TrialLog, space: SearchSpace, exp_key: str | None = None,
                 info: dict[str, Any] | None = None, *, read: Callable[[list], Iterable[TrialRecord]] | None = None,
                 history: Callable[[], Iterable[dict]] | None = None, flush_timeout: float | None = 30.0,
                 quiet: bool = False) -> None:
        """`read(ids)` returns whole trial documents by `_id`; `history()` every trial (backfill).
        quiet: no warnings, the caller reports `failure` itself (the `hyperdist mlflow` backfill)."""
        self.tlog, self.space, self.exp_key, self.info, self.quiet = tlog, space, exp_key, info or {}, quiet
        self._read, self._history, self.flush_timeout = read, history, flush_timeout
        self._inbox: queue.Queue = queue.Queue()
        self._pending: list[LoggedTrial] = []
        self._ids: list = []
        self._seen: set = set()  # trial _ids queued once: a trial the backfill and the hook both see is logged once
        self._closing: str | None = None
        self._wake = threading.Event()
        self.logged = 0
        self.failure: str | None = None  # the last error while the tracker is unreachable
        self._thread = threading.Thread(target=self._run, name="hyperdist-mirror", daemon=True)
        self._thread.start()

    # --- called by the search ---------------------------------------------------------------------
    def finished(self, doc: dict) -> None:
        """The coordinator's hook: a trial document it read as finished (only its `_id` is used)."""
        self._inbox.put(("id", doc["_id"]))

    def add(self, record: LoggedTrial) -> None:
        self._inbox.put(("record", record))

    def close(self, state: str = ExperimentState.DONE) -> int:
        """Log what is pending (waiting at most flush_timeout, None: until done or refused) and end
        the run ("done", "stopped", or "running": left as it is); returns how many finished trials
        could not be logged, after a warning that says so (unless quiet)."""
        self._closing = state
        self._wake.set()
        self._thread.join(self.flush_timeout)
        left = self.unlogged()
        if left and not self.quiet:
            where = f"`hyperdist mlflow {shlex.quote(self.exp_key)}` copies them" if self.exp_key else "they are in the Trials object"
            log.warning("%d finished trials were not logged to the tracker (%s); they are safe in the history: %s "
                        "once it answers", left, self.failure or f"it did not answer within {self.flush_timeout:g} s",
                        where)
        return left

    def unlogged(self) -> int:
        return len(self._pending) + len(self._ids) + self._inbox.qsize()

    # --- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        opened, delay = False, self.RETRY_FIRST
        while True:
            self._drain(block=opened and not self._pending and not self._ids)
            last_try = self._closing is not None  # once the search ended, a failed attempt is the last
            try:
                if not opened:
                    done = self.tlog.open(self.exp_key, self.info)
                    opened = True
                    if self._history is not None:
                        self._queue([d["_id"] for d in self._history() if d.get("state") in FINISHED
                                     and int(d["tid"]) not in done])
                if self._ids:
                    assert self._read is not None
                    batch = self._ids[:500]
                    self._pending += sorted((record_from_store(r, self.space) for r in self._read(batch)),
                                            key=lambda r: r.tid)
                    del self._ids[:len(batch)]
                while self._pending:
                    self.tlog.log(self._pending[0])
                    self._pending.pop(0)
                    self.logged += 1
                if self.failure is not None:
                    log.warning("the tracker answers again; %d trials logged so far", self.logged)
                self.failure, delay = None, self.RETRY_FIRST
                if self._closing is not None and not self._ids and self._inbox.empty():
                    self.tlog.close(self._closing)
                    return
            except Exception as exc:  # a tracker's failure never reaches the search
                message = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
                if self.failure is None and not last_try and not self.quiet:  # else close() or the caller says it
                    log.warning("cannot log to the tracker (%s); the search goes on, and finished trials are logged "
                                "when it answers (retrying)", message)
                self.failure = message
                if last_try:
                    return
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(2 * delay, self.RETRY_MAX)

    def _drain(self, block: bool) -> None:
        while True:
            try:
                kind, item = self._inbox.get(timeout=1.0) if block else self._inbox.get_nowait()
            except queue.Empty:
                if block and self._closing is None:
                    continue
                return
            block = False
            if kind == "id":
                self._queue([item])
            elif kind == "record":
                self._pending.append(item)

    def _queue(self, ids: list) -> None:
        for key in ids:
            if key not in self._seen:
                self._seen.add(key)
                self._ids.append(key)


def store_mirror(tlog: TrialLog, store: Any, exp_key: str, space: SearchSpace, info: dict[str, Any],
                 flush_timeout: float | None = 30.0, quiet: bool = False) -> Mirror:
    """A mirror of a distributed experiment: the coordinator's hook is `.finished`; trials already
    finished and not yet logged (a resumed search) are logged first."""
    return Mirror(tlog, space, exp_key, info, read=lambda ids: store.records_by_id(exp_key, ids),
                  flush_timeout=flush_timeout, history=lambda: store.iter_history(exp_key, STATE_FIELDS), quiet=quiet)
