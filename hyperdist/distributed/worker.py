"""The worker: claim a trial, evaluate the objective, report, repeat. It keeps no state of its own.

Everything a worker needs (space, objective reference) is in the experiment document, so any number
of workers can start and stop on any machine. A lease, extended by a heartbeat thread while the
objective runs, proves the trial is still being worked on; if the worker dies the lease expires
and the trial is handed out again. A report is accepted only with the current lease token.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperdist.distributed.evaluated import Evaluated, WorkerStats
from hyperdist.distributed.gpus import visible_device
from hyperdist.distributed.heartbeat import Heartbeat
from hyperdist.distributed.logfile import LogRotation
from hyperdist.distributed.runnable import CannotRun, Runnable, runnable
from hyperdist.errors import ExperimentNotFound, HyperdistError, redact
from hyperdist.objective.evaluation import ChildProcess, Outcome, failed, run_in_process, store_context
from hyperdist.objective.reference import AllowList
from hyperdist.objective.result import STATUS_FAIL, exception_error
from hyperdist.store import ExperimentState, Store
from hyperdist.store.history import trial_problem

log = logging.getLogger("hyperdist.worker")
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class WorkerInterrupted(BaseException):
    """Raised inside the objective by SIGTERM/SIGINT so the trial can be handed back."""


@dataclass
class WorkerConfig:
    allow: list[str]
    exp_key: str | None = None
    isolate: bool = False              # a fresh subprocess per trial
    trial_timeout: float | None = None
    lease_seconds: float = 30.0
    idle_timeout: float | None = 60.0
    drain: bool = False                # on SIGTERM finish the current trial instead of handing it back
    max_consecutive_failures: int = 10
    max_trials: int | None = None
    poll_interval: float = 0.02         # first wait when no trial is ready; grows to 1 s
    outage_timeout: float = 300.0       # how long a database outage is waited out
    prefetch: int = 8                   # most trials claimed at once, when trials take under batch_seconds
    batch_seconds: float = 0.12         # what a worker may hold back from the others in prefetched trials
    path: str | None = None             # where relative objective files and modules are found (default: cwd)
    slot: tuple[int, int] | None = None  # (i, k): the i-th of k workers started together prefers tids i mod k


class Worker:
    def __init__(self, store: Store, config: WorkerConfig) -> None:
        self.store, self.config = store, config
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.device = visible_device()  # recorded on each trial this worker claims
        self.stats = WorkerStats()
        self.allow = AllowList(config.allow)
        self.base = Path(config.path or Path.cwd()).resolve()
        self._experiments: dict[tuple[str, str], Runnable] = {}
        self._skipped: set[str] = set()  # experiments a worker serving every experiment cannot run
        self._handlers = False  # install_signal_handlers was called
        self._stopping = False
        self._current: dict | None = None
        self._child: ChildProcess | None = None
        self._in_objective = False
        self._idle = False  # in the pause between empty claims
        self._warned_missing = False
        self._seconds: collections.deque[float] = collections.deque(maxlen=9)  # recent trials' durations
        self._log = LogRotation()  # the size of this worker's log file, if it writes to one

    # --- signals --------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM, SIGINT and SIGHUP (a closed terminal) hand the running trial back."""
        self._handlers = True
        for sig in _SIGNALS:
            signal.signal(sig, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        """An objective may have replaced them (a library installing its own): put ours back."""
        if self._handlers and any(signal.getsignal(s) != self._on_signal for s in _SIGNALS):
            log.warning("the objective replaced the worker's signal handlers; restoring them")
            self.install_signal_handlers()

    def _on_signal(self, signum: int, frame: Any) -> None:
        already = self._stopping
        self._stopping = True
        if self._idle:  # cut the idle pause short (a sleep resumes after a handler that returns)
            self._idle = False
            raise WorkerInterrupted()
        if self.config.drain and not already:
            log.info("signal %d: finishing the current trial, then stopping", signum)
            return
        if self._child is not None:
            self._child.terminate()
        if self._in_objective:
            raise WorkerInterrupted()

    # --- main loop ------------------------------------------------------------------------------
    def run(self) -> WorkerStats:
        """Claim, evaluate, repeat. Results are handed in together with the next claim (one command);
        short trials are claimed several at a time (see `_batch`)."""
        cfg = self.config
        refusal = self._cannot_serve()
        if refusal:
            self._refuse(str(cfg.exp_key), refusal)
            return self._exit(1, refusal)
        idle_since = checked_over = time.monotonic()
        backoff = cfg.poll_interval
        held: list[dict] = []  # claimed, not started yet
        finished: list[Evaluated] = []
        while True:
            if self._stopping or self._left() - len(finished) <= 0:
                self._hand_back(held)
                if finished:
                    accepted = self.store.retry(self.store.report_and_claim, [f.report for f in finished],
                                                self.owner, cfg.lease_seconds, cfg.exp_key, 0,
                                                timeout=self._report_timeout(), device=self.device)[0]
                    self.stats.settle_all(finished, accepted)
                break
            if held and isinstance(held[0].get("exp_key"), str) and held[0]["exp_key"] in self._skipped:
                self._hand_back([held.pop(0)])
                continue
            if held and self.stats.streak(finished) >= cfg.max_consecutive_failures:
                self._hand_back(held)  # the failure limit is reached: report what ran, then stop
            if held:
                doc = held.pop(0)
                done = self._run_trial(doc, held)
                if done is not None:
                    finished.append(done)
                    self._seconds.append(done.seconds)
                idle_since = time.monotonic()
                continue
            failing = self.stats.streak(finished) >= cfg.max_consecutive_failures  # then claim nothing more
            want = 0 if failing else self._batch(len(finished))
            accepted, held = self.store.retry(self.store.report_and_claim, [f.report for f in finished], self.owner,
                                              cfg.lease_seconds, cfg.exp_key, want,
                                              exclude=sorted(self._skipped),
                                              timeout=max(cfg.outage_timeout, self._report_timeout()),
                                              device=self.device, slot=cfg.slot)
            if finished:
                self.stats.settle_all(finished, accepted)
                finished = []
                if self.stats.consecutive_failures >= cfg.max_consecutive_failures:
                    self._hand_back(held)  # claimed with the last report: others may run them
                    return self._exit(1, f"the last {self.stats.consecutive_failures} trials all failed "
                                         f"(last error: {self.stats.last_error}); stopping")
            if held:
                backoff = cfg.poll_interval
                continue
            now = time.monotonic()
            if cfg.exp_key and now - checked_over >= 1.0:  # an empty queue: is the search over?
                checked_over = now
                if self.store.retry(self._experiment_over, cfg.exp_key, timeout=cfg.outage_timeout):
                    return self._exit(0, f"experiment {cfg.exp_key!r} is finished")
            if cfg.idle_timeout is not None and now - idle_since > cfg.idle_timeout:
                return self._exit(0, f"no trial to run for {cfg.idle_timeout:g} s")
            self._pause(backoff)
            backoff = min(backoff * 1.5, 1.0)
        if cfg.max_trials is not None and not self._stopping:
            return self._exit(0, f"ran {cfg.max_trials} trials")
        if self.stats.exit_code:  # stopped itself (e.g. an objective it may not run)
            return self._exit(self.stats.exit_code, self.stats.reason)
        return self._exit(0, "stopped by signal")

    def _pause(self, seconds: float) -> None:
        """Sleep while there is nothing to claim; a stop signal ends the pause at once, so a worker
        told to stop when its search is over exits without waiting out its backoff."""
        try:
            self._idle = True  # the handler raises only while this is set, and clears it first
            if not self._stopping:  # a signal that came during the last command
                time.sleep(seconds)
            self._idle = False
        except WorkerInterrupted:
            pass

    def _cannot_serve(self) -> str:
        """Why a worker for one experiment can run none of its trials ('' if it can, or the
        experiment does not exist yet): checked before claiming, so a worker started in the wrong
        directory or with the wrong --allow fails no trial of the search. An experiment changed
        after this check hands back the trial it meets instead (`_cannot_run`)."""
        if not self.config.exp_key:
            return ""
        try:
            self.store.retry(self._experiment, self.config.exp_key, None, timeout=self.config.outage_timeout)
        except ExperimentNotFound:
            return ""
        except CannotRun as exc:
            return str(exc)
        return ""

    def _refuse(self, exp_key: str, reason: str) -> None:
        """Tell the search (and `hyperdist status`) why this worker will not run `exp_key`: it may
        be on a machine its operator never sees. A failed write only loses the note."""
        try:
            self.store.retry(self.store.record_refusal, exp_key, self.owner, socket.gethostname(), redact(reason),
                             timeout=10)
        except HyperdistError as exc:
            log.warning("could not record the refusal on %r: %s", exp_key, redact(str(exc)))

    def _left(self) -> float:
        """Trials this worker may still run (max_trials), counting only those already settled."""
        if self.config.max_trials is None:
            return float("inf")
        return self.config.max_trials - self.stats.done - self.stats.errors

    def _batch(self, unsettled: int) -> int:
        """How many trials to claim: one, unless recent trials were so short that several fit in
        batch_seconds; a claim and a report then serve several trials (docs/performance.md)."""
        cfg = self.config
        n = 1
        if self._seconds and not cfg.isolate:
            typical = sorted(self._seconds)[len(self._seconds) // 2]
            n = max(1, min(cfg.prefetch, int(cfg.batch_seconds / max(typical, 1e-6))))
        return int(max(1, min(n, self._left() - unsettled)))

    def _hand_back(self, held: list[dict]) -> None:
        """Trials claimed but not started go back to the queue for other workers."""
        for doc in held:
            self.store.retry(self.store.release, doc["_id"], doc["lease_token"], timeout=10)
        held.clear()

    def _report_timeout(self) -> float:
        return max(60.0, 2 * self.config.lease_seconds)

    def _exit(self, code: int, reason: str) -> WorkerStats:
        self.stats.exit_code, self.stats.reason = code, reason
        (log.error if code else log.info)("worker %s exits: %s (%d done, %d errors)", self.owner, redact(reason),
                                          self.stats.done, self.stats.errors)
        return self.stats

    def _experiment_over(self, exp_key: str) -> bool:
        """Done experiments end the worker; one that does not exist yet is waited for (idle timeout)."""
        try:
            return self.store.get_experiment(exp_key).get("state") == ExperimentState.DONE
        except ExperimentNotFound:
            if not self._warned_missing:
                log.info("experiment %r does not exist yet; waiting for its coordinator", exp_key)
                self._warned_missing = True
            return False

    # --- one trial ------------------------------------------------------------------------------
    def _experiment(self, exp_key: str, space_hash: str | None) -> Runnable:
        """The experiment's space and objective, read once per (experiment, space) the worker meets.
        Raises CannotRun for anything in the document this worker cannot or may not run."""
        if space_hash is not None and (exp_key, space_hash) in self._experiments:
            return self._experiments[(exp_key, space_hash)]
        exp_doc = self.store.get_experiment(exp_key)
        key = (exp_key, str(exp_doc.get("space_hash", "")))
        if key not in self._experiments:
            self._experiments[key] = runnable(exp_key, exp_doc, self.allow, self.base, self.config.isolate)
        return self._experiments[key]

    def _run_trial(self, doc: dict, waiting: list[dict]) -> Evaluated | None:
        """Evaluate one claimed trial; None when it was handed back instead of finished. The
        heartbeat also keeps the leases of the `waiting` trials claimed with it."""
        started = time.monotonic()
        token = doc["lease_token"]
        problem = trial_problem(doc)
        if problem:
            return Evaluated(doc, failed("InvalidTrialDocument", f"invalid trial document: {problem}"), started)
        try:
            exp = self._experiment(doc["exp_key"], doc.get("space_hash"))
        except ExperimentNotFound:
            return Evaluated(doc, failed("InvalidTrialDocument",
                                         f"invalid trial document: experiment {doc['exp_key']!r} does not exist"),
                             started)
        except CannotRun as exc:
            self._cannot_run(doc, exc)
            return None
        try:
            exp.space.validate(doc["params"])
        except HyperdistError as exc:
            return Evaluated(doc, failed("InvalidParams", f"invalid trial document: {exc}"), started)
        beat = Heartbeat(self.store, [doc["_id"]] + [d["_id"] for d in waiting if d["lease_token"] == token],
                         token, self.config.lease_seconds, on_lost=self._lease_lost)
        self._log.rotate_if_full()  # before the trial, so its own lines stay in the current file
        beat.start()
        try:
            outcome = self._evaluate(exp, doc)
        except WorkerInterrupted:
            beat.stop()
            self.store.retry(self.store.release, doc["_id"], token, timeout=10)
            log.info("trial %s of %s handed back (worker stopping)", doc["tid"], doc["exp_key"])
            return None
        finally:
            beat.stop()
        if self._stopping and not self.config.drain and outcome.error and outcome.error["type"] == "ObjectiveCrashed":
            self.store.release(doc["_id"], token)  # we killed the child ourselves
            return None
        if beat.lost:  # handed out again (reaped, or failed after max attempts): a report would be refused
            log.warning("trial %s of %s: its lease was lost while it ran (it was handed out again); its result "
                        "is dropped", doc["tid"], doc["exp_key"])
            return None
        return Evaluated(doc, outcome, started)

    def _lease_lost(self) -> None:
        """From the heartbeat thread: the running trial was handed out again. A --subprocess trial's
        process is ended, which harms nothing else. An objective in this process is not interrupted
        (an exception raised at an arbitrary point could leave its libraries' state broken for the
        next trial); one that reports progress is told to stop by `ctx.should_stop()`."""
        child = self._child
        if child is not None:
            child.terminate()

    def _cannot_run(self, doc: dict, exc: CannotRun) -> None:
        """The experiment appeared or changed after `_cannot_serve`, or this worker serves every
        experiment: the trial goes back (no trial fails for what a worker may or can run), the
        refusal is noted on the experiment, and a worker for one experiment stops, since nothing else
        is there to serve; a worker serving every experiment skips that one (it may be meant for others)."""
        self._refuse(doc["exp_key"], str(exc))
        self.store.retry(self.store.release, doc["_id"], doc["lease_token"], timeout=10)
        if self.config.exp_key is None:
            self._skipped.add(doc["exp_key"])
            log.warning("skipping experiment %r from now on: %s", doc["exp_key"], redact(str(exc)))
            return
        self._stopping = True  # the exit line logs the reason
        self.stats.exit_code, self.stats.reason = 1, str(exc)

    def _evaluate(self, exp: Runnable, doc: dict) -> Outcome:
        params = doc["params"]
        if self.config.isolate:
            pruning = {
                "url": self.store.url, "db": self.store.db_name, "exp_key": doc["exp_key"], "tid": doc["tid"],
                "trial_id": str(doc["_id"]), "token": doc["lease_token"], "pruner": exp.pruner}
            self._child = ChildProcess(exp.objective, exp.space.to_json(), params, pruning,
                                       allow=self.allow.entries, base=str(self.base))
            try:
                return self._child.wait(self._timeout(exp))
            finally:
                self._child = None
        try:
            config = exp.space.eval(params)
        except HyperdistError as exc:  # valid params, but an expression of the space failed on them (1 / q at q=0)
            return Outcome({"status": STATUS_FAIL}, exception_error(exc))  # as fmin and the --subprocess child record it
        self._in_objective = True
        try:
            if self._stopping and not self.config.drain:
                raise WorkerInterrupted()
            assert exp.fn is not None
            ctx = None
            if exp.with_context:
                ctx = store_context(self.store, doc["exp_key"], doc["_id"], doc["lease_token"], doc["tid"], exp.pruner)
            return run_in_process(exp.fn, config, self._timeout(exp), ctx)
        finally:
            self._in_objective = False
            self._restore_signal_handlers()

    def _timeout(self, exp: Runnable) -> float | None:
        """The worker's own --trial-timeout, else the one the search stored with the experiment."""
        return self.config.trial_timeout if self.config.trial_timeout is not None else exp.trial_timeout
