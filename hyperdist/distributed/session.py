"""A search session: one coordinator driven to its end the way a person watches it, for both the
`hyperdist search` command and `MongoTrials`.

While the coordinator ticks, the session draws the progress bar with ok / failed / pruned counts,
reads the experiment's stop request (`hyperdist stop`) every second and watches the workers
(watch.py). However the search ends before its stop rules (Ctrl-C, SIGTERM, SIGHUP, a stop request,
no workers left, an unexpected error) it stops the same way: running trials handed back, local
workers stopped, the experiment marked `stopped`, and one message saying why and how to continue.
"""
from __future__ import annotations

import shlex
import signal
import socket
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from hyperdist.distributed.coordinator import Coordinator, Progress
from hyperdist.errors import HyperdistError, LeaseLost, SearchStopped, StoreUnavailable, printable, redact
from hyperdist.server.launcher import LocalWorker, stop_workers
from hyperdist.distributed.outcomes import Tally, counts_text
from hyperdist.local.progress import ProgressBar
from hyperdist.distributed.watch import WorkersGone, WorkerWatch, hint_text, worker_command
from hyperdist.store import Refusal
from hyperdist.store.document import trials_text

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_STOP_REQUESTED, EXIT_FAILED = 3, 1
CLEANUP_SECONDS = 5.0  # each step of stopping gives up on a database that does not answer after this long


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised where the main thread is, as Ctrl-C's KeyboardInterrupt is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.told = False  # the session said "interrupted by ..." already

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _StopAsked(Exception):
    """Someone ran `hyperdist stop` on this experiment."""


@contextmanager
def stop_signals(out: TextIO | None = None) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise `Interrupted` once; a repeat while the search cleans up is
    only acknowledged, so the cleanup finishes. Handlers someone else installed are left alone, and
    outside the main thread (where signals cannot be handled) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if fired:
            (out or sys.stderr).write(f"{signal.Signals(signum).name}: still stopping, please wait ...\n")
            return
        fired.append(signum)
        raise Interrupted(signum)

    defaults = (signal.SIG_DFL, signal.default_int_handler)
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, old in previous.items():
        if old in defaults:
            signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            if old in defaults:
                signal.signal(s, old)


class Session:
    def __init__(self, coord: Coordinator, bar: ProgressBar, *, workers: Sequence[LocalWorker] = (),
                 resume_hint: str = "", lease: float = 30.0, out: TextIO | None = None,
                 trial_timeout: float | None = None) -> None:
        self.coord, self.store, self.exp_key, self.bar = coord, coord.store, coord.exp_key, bar
        self.workers, self.resume_hint, self.out = list(workers), resume_hint, out or sys.stderr
        command = worker_command(self.store.url, self.store.db_name, coord.exp_key, coord.objective, Path.cwd())
        hint = None if self.workers else hint_text(command, self.store.url)
        self.watch = WorkerWatch(self.store, coord.exp_key, self.workers, lease=lease, hint=hint,
                                 reap=coord.reap, say=self.say, trial_timeout=trial_timeout)
        self.base = Tally()
        self._asked = 0.0
        self._refusals_told: set[tuple[str, Any]] = set()  # (worker, at) of the refusals printed

    def say(self, text: str) -> None:
        """A message on its own lines, the progress bar redrawn below it."""
        self.bar.clear()
        self.out.write(printable(redact(text)).rstrip("\n") + "\n")
        self.out.flush()
        self.bar.draw()

    def tally(self) -> Tally:
        return self.base + self.coord.outcomes

    def run(self) -> Progress:
        """Run the coordinator (already started) to the end. A search that ends early is stopped
        cleanly, then the reason is raised: SearchStopped (asked to stop, no workers left), the
        KeyboardInterrupt / Interrupted of a signal, or the unexpected exception itself."""
        self.store.update_experiment(self.exp_key, stop_request=None)
        self._refusals_told = {(r.worker, r.at) for r in self.store.search_notices(self.exp_key)[1]}  # not news
        self.base = Tally(**self.store.outcome_counts(self.exp_key, exclude=list(self.coord.open)))
        try:
            progress = self.coord.run(self._on_tick)
        except BaseException as exc:
            self.bar.close()
            stopped = self._stop(exc)
            if stopped is not None:
                raise stopped from None
            raise
        self.bar.close()
        return progress

    def _on_tick(self, p: Progress) -> None:
        self.bar.update(p.finished, p.best_loss, self.tally().counts())
        now = time.monotonic()
        try:
            self._tell_lost()
            if now - self._asked >= 1.0:
                self._asked = now
                asked, refusals = self.store.search_notices(self.exp_key)
                self._tell_refusals(refusals)
                if asked:
                    raise _StopAsked(f"stop requested by {asked.get('by')} at {_clock(asked.get('at'))}")
            self.watch.check(max(self.coord.open.values(), default=self.coord.finished))
        except StoreUnavailable:
            pass  # an outage: the coordinator's own retries decide; the watch looks again next tick

    def _tell_lost(self) -> None:
        """One line per worker that stopped heartbeating, naming the trials the reaper took back from it
        (a worker holding a batch of short trials loses them all at once)."""
        lost, self.coord.lost = self.coord.lost, []
        groups: dict[tuple, list] = {}
        for t in lost:
            groups.setdefault((t.owner, t.failed, t.attempt, t.max_attempts), []).append(t.tid)
        for (owner, failed, attempt, max_attempts), tids in groups.items():
            then = (f"on attempt {attempt} of {max_attempts}; {_it(tids)} ends ERROR (LeaseExpired)" if failed
                    else f"handed out again (attempt {attempt} of {max_attempts} lost)")
            lease = "its lease" if len(tids) == 1 else "their leases"
            self.say(f"{trials_text(tids)}: worker {owner} stopped heartbeating ({lease} expired); {then}")
        if lost:
            self.watch.lost_lease()

    def _tell_refusals(self, refusals: list[Refusal]) -> None:
        """One line per worker that would not run this experiment, as it is first seen (they may
        run on machines whose terminals the person never sees). A local worker's exit is told by the
        watch instead."""
        local = {f"{socket.gethostname()}:{w.proc.pid}" for w in self.workers}
        for r in refusals:
            if (r.worker, r.at) not in self._refusals_told and r.worker not in local:
                self._refusals_told.add((r.worker, r.at))
                self.watch.refused += 1
                self.say(f"worker {r.worker} refused to run {self.exp_key!r}: {r.reason}")

    def _stop(self, exc: BaseException) -> SearchStopped | None:
        """Hand back, stop the workers, mark the experiment stopped; the exception to raise instead
        of `exc`, if any."""
        if isinstance(exc, Interrupted):
            why = f"interrupted by {signal.Signals(exc.signum).name}"
            why += " (Ctrl-C)" if exc.signum == signal.SIGINT else ""
        elif isinstance(exc, KeyboardInterrupt):
            why = "interrupted"
        elif isinstance(exc, _StopAsked):
            why = str(exc)
        elif isinstance(exc, LeaseLost):
            why = str(exc)
        elif isinstance(exc, WorkersGone):
            age = time.monotonic() - self.watch.started
            seen = (f"for {self.watch.lease:g} s" if age >= self.watch.lease
                    else f"since the search started {age:.0f} s ago")
            why = f"every local worker has exited and no other worker has been seen {seen}, so the search cannot go on:\n{exc}"
        else:
            why = f"the search failed ({type(exc).__name__}: {exc})"
        if isinstance(exc, LeaseLost):  # the experiment is the new coordinator's: nothing is written
            self.say(f"{why}\nstopping the local workers ...")
            stop_workers(self.workers, timeout=CLEANUP_SECONDS)
            return SearchStopped(str(exc), EXIT_FAILED)
        self.say(f"{why}\nhanding unfinished trials back ...")
        if isinstance(exc, KeyboardInterrupt):
            exc.told = True  # type: ignore[attr-defined]
        reachable = True
        try:
            with self.store.time_limit(CLEANUP_SECONDS):
                self.coord.stop()
        except HyperdistError as err:  # an outage, usually (a time limit that ran out is not always one)
            reachable = False
            self.say(f"could not mark {self.exp_key!r} stopped ({_first_line(str(err))}); the trials already "
                     f"finished are kept: {self.resume_hint or 'resume it to continue'}")
        # during an outage the workers cannot hand their trials back either: they get 2 s, then SIGKILL
        stop_workers(self.workers, timeout=20.0 if reachable else 2.0)
        tally, last, exact = self.tally(), None, False
        try:
            with self.store.time_limit(CLEANUP_SECONDS if reachable else 0.5):
                dead = [f"{socket.gethostname()}:{w.proc.pid}" for w in self.workers]
                if dead and self.store.expire_leases(self.exp_key, dead):  # a worker that had to be killed
                    self.coord.reap()
                last = last_error_text(self.store, self.exp_key) if isinstance(exc, WorkersGone) else None
                # trials the workers finished while they stopped were never read by the coordinator
                tally, exact = Tally(**self.store.outcome_counts(self.exp_key)), True
        except HyperdistError:
            pass
        if last:
            self.say(last)
        done = (f"stopped at {tally.total} trials ({counts_text(tally.counts())})" if exact else
                f"stopped at {tally.total} or more trials (as last read: {counts_text(tally.counts())}; the database "
                "did not answer for an exact count)")
        hint = self.resume_hint
        if hint and tally.total and not tally.ok:  # the same objective would fail the same way
            hint = f"fix the objective, then {hint}"
        self.say(f"{done}; {hint}" if hint else done)
        if isinstance(exc, _StopAsked):
            return SearchStopped(f"{exc}", EXIT_STOP_REQUESTED)
        if isinstance(exc, WorkersGone):
            return SearchStopped("every local worker has exited", EXIT_FAILED)
        return None

    def summary(self) -> tuple[str, bool]:
        """The end-of-search summary, and whether any trial succeeded."""
        tally = self.tally()
        lines = [f"{self.coord.finished} trials: {counts_text(tally.counts())}"]
        if tally.failed:
            lines.append("most frequent errors:")
            lines += [f"  {n} x {_first_line(text)}" for n, text in self.store.top_errors(self.exp_key)]
            key = shlex.quote(self.exp_key)
            lines.append(f"  (tracebacks: hyperdist trials {key} --state error; hyperdist show {key} TID)")
        if not tally.total:
            lines.append("no trial finished (a --timeout shorter than one trial?)")
        elif not tally.ok:
            lines.append("every trial failed")
            lines.append(last_error_text(self.store, self.exp_key) or "")
        return redact("\n".join(lines).rstrip()), tally.ok > 0


def last_error_text(store: Any, exp_key: str) -> str | None:
    """The most recent failed trial's error with its traceback, indented."""
    rec = store.last_error(exp_key)
    if rec is None:
        return None
    error = rec.error or {}
    body = error.get("traceback") or (f"{error.get('type')}: {error.get('message')}" if error
                                      else rec.result.get("failure", "returned status 'fail'"))
    return f"last error (trial {rec.tid}, worker {rec.owner}):\n" + textwrap.indent(str(body).rstrip(), "  ")


def _it(tids: list) -> str:
    return "the trial" if len(tids) == 1 else "each"


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 200 else line[:197] + "..."


def _clock(at: Any) -> str:
    return at.strftime("%H:%M:%S UTC") if hasattr(at, "strftime") else "?"
