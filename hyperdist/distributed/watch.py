"""Watching a search's workers, so that a search nobody works on ends (or says what to do) instead of
waiting in silence.

Between coordinator ticks the watch polls the local worker processes: a worker that died leaves its
trials to be handed out again at once rather than a lease later, and once every local worker has
exited and no other worker has claimed, run or finished a trial for a lease, the search cannot go on
(`WorkersGone`). A search with no local workers prints the command to start one whenever no worker
has claimed, run or finished a trial for `hint_after` seconds: at the start, and again each time the
workers it had are all gone (a worker that died mid-trial is noticed when its lease runs out).
Other workers are seen through the trials they hold: the last few hundred trials, read by tid range
through the claim index, name their owner and when it claimed, last beat for or finished them.
A trial that runs far longer than the others (a hung objective, with no --trial-timeout to end it)
is named once, so a search that seems stuck says where.
"""
from __future__ import annotations

import datetime as dt
import re
import shlex
import signal
import socket
import time
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

from hyperdist.errors import redact
from hyperdist.objective.reference import is_file_target, split_reference
from hyperdist.server.launcher import LocalWorker
from hyperdist.store import Store, TrialState
from hyperdist.store.document import count, utc

_EXITS = re.compile(r" exits: (.*)$", re.MULTILINE)
RECENT = 256  # trials read to see who is working: far more than are ever open at once


class WorkersGone(Exception):
    """Every local worker exited and no other worker is working on the experiment."""


class WorkerWatch:
    def __init__(self, store: Store, exp_key: str, workers: Sequence[LocalWorker] = (), *, lease: float = 30.0,
                 reap: Callable[[], object], hint: str | None = None, hint_after: float = 10.0,
                 say: Callable[[str], None] = print, trial_timeout: float | None = None,
                 long_after: float = 300.0) -> None:
        """`reap` hands back the expired leases (the coordinator's, which spares those an outage let expire)."""
        self.store, self.exp_key, self.workers, self.lease = store, exp_key, list(workers), lease
        self.reap = reap
        self.hint, self.hint_after, self.say = hint, hint_after, say
        self.started = time.monotonic()
        self._since = dt.datetime.now(dt.timezone.utc)
        self._worked = False  # a worker has been seen working on this search
        self.refused = 0  # workers that refused to run it (told by the session)
        self._exited: dict[int, str] = {}  # worker index -> why it exited
        self._told: set[int] = set()  # workers whose exit was printed as it happened
        self._next_check = 0.0
        self._hinted = False
        self.trial_timeout, self.long_after = trial_timeout, long_after
        self._next_long = time.monotonic() + min(long_after, 30.0)
        self._named_long: set[int] = set()  # tids already named as running long

    def check(self, last_tid: int) -> None:
        """Called between ticks; `last_tid` is the highest tid the coordinator knows. Raises
        WorkersGone when the search cannot go on."""
        now = time.monotonic()
        for w in self.workers:
            if w.index not in self._exited and w.proc.poll() is not None:
                self._on_exit(w)
        if now >= self._next_long:
            self._next_long = now + min(self.long_after, 30.0)
            self._name_long_trials(last_tid)
        if now < self._next_check:
            return
        self._next_check = now + 1.0
        if self.workers:
            if len(self._exited) < len(self.workers):
                return
            recent = self._recent(last_tid)
            if self._others_seen(recent, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=self.lease)):
                self._next_check = now + 5.0  # someone else works on it: look again less often
                return
            raise WorkersGone(self.exits())
        if self.hint is None or now - self.started < self.hint_after:
            return
        horizon = max(self._since, dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=self.hint_after))
        recent = self._recent(last_tid)
        if self._others_seen(recent, horizon):
            self._hinted, self._worked = False, True  # the hint is due again once they are all gone
            self._next_check = now + 3.0
        elif not self._hinted:
            self._hinted = True
            self._worked = self._worked or self._ever_claimed(recent)
            first = (f"no worker has claimed, run or finished a trial of {self.exp_key!r} for {self.hint_after:g} s "
                     "(the workers it had are gone)" if self._worked
                     else f"no worker has claimed a trial of {self.exp_key!r} for {self.hint_after:g} s")
            refused = f" ({self.refused} refused it: see above)" if self.refused else ""
            self.say(f"{first}{refused}; {self.hint}")

    def lost_lease(self) -> None:
        """A worker's lease ran out: look at once whether anyone is left."""
        self._next_check, self._worked = 0.0, True

    def _on_exit(self, w: LocalWorker) -> None:
        owner = f"{socket.gethostname()}:{w.proc.pid}"
        held = sorted(d["tid"] for d in self.store.running_trials(self.exp_key)
                      if d.get("owner") == owner and isinstance(d.get("tid"), int))
        self._exited[w.index] = reason = exit_reason(w, held)
        # a failure, or a worker someone stopped while the search runs (a clean exit, but one worker fewer)
        if w.proc.returncode != 0 or "stopped by signal" in reason:
            left = len(self.workers) - len(self._exited)
            self.say(f"worker {w.index} (pid {w.proc.pid}) exited: {reason}; {left} of {len(self.workers)} "
                     "local workers left")
            self._told.add(w.index)
        if held and self.store.expire_leases(self.exp_key, [owner]):  # its trials go to the others now
            self.reap()

    def _name_long_trials(self, last_tid: int) -> None:
        """Say once per trial when one has run past `long_after` seconds and ten times the median
        of the recent finished ones: a hung objective is otherwise silent forever."""
        now = dt.datetime.now(dt.timezone.utc)
        running = []
        for doc in self.store.running_trials(self.exp_key):
            claimed = utc(doc.get("claimed"))
            if isinstance(doc.get("tid"), int) and doc["tid"] not in self._named_long and claimed is not None:
                if (now - claimed).total_seconds() >= self.long_after:
                    running.append((doc["tid"], doc.get("owner"), (now - claimed).total_seconds()))
        if not running:
            return
        limit = max(self.long_after, 10 * self._typical_seconds(last_tid))
        for tid, owner, seconds in sorted(running):
            if seconds < limit:
                continue
            self._named_long.add(tid)
            why = (f"it ends at the --trial-timeout of {self.trial_timeout:g} s" if self.trial_timeout else
                   "no --trial-timeout is set, so it runs until the objective returns")
            self.say(f"trial {tid} has run for {_duration(seconds)} on worker {owner} ({why}; "
                     f"`hyperdist stop {shlex.quote(self.exp_key)}` ends the search)")

    def _typical_seconds(self, last_tid: int) -> float:
        """The median duration of the recent finished trials (0 when none finished yet)."""
        took = []
        for doc in self._recent(last_tid):
            finished, claimed = utc(doc.get("finished")), utc(doc.get("claimed"))
            if finished is not None and claimed is not None:
                took.append((finished - claimed).total_seconds())
        return sorted(took)[len(took) // 2] if took else 0.0

    def _recent(self, last_tid: int) -> list[dict]:
        """The last RECENT trials of the search, one read for every question a check asks of them."""
        return list(self.store.recent_trials(self.exp_key, last_tid - RECENT))

    def _others_seen(self, recent: list[dict], horizon: dt.datetime) -> bool:
        """Whether a worker other than our dead ones holds a trial RUNNING, or claimed, beat for or
        finished one since `horizon`. A long trial's heartbeats may be far apart; a lease that ran out
        counts until the coordinator's reaper takes the trial back, so the search first says whose
        worker stopped heartbeating (Session) and only then whether anyone is left."""
        dead = {f"{socket.gethostname()}:{w.proc.pid}" for w in self.workers}
        for doc in recent:
            if not isinstance(doc.get("owner"), str) or doc["owner"] in dead:
                continue
            if doc.get("state") == TrialState.RUNNING:
                return True
            times = (utc(doc.get(k)) for k in ("claimed", "heartbeat", "finished"))
            if any(t is not None and t >= horizon for t in times):
                return True
        return False

    @staticmethod
    def _ever_claimed(recent: list[dict]) -> bool:
        """Whether any worker has claimed a trial of the search (a lease it lost leaves no owner)."""
        return any(count(d.get("attempts")) for d in recent)

    def exits(self) -> str:
        """How the local workers ended and why: one line for each whose exit was not printed yet."""
        lines = [f"  worker {w.index} (pid {w.proc.pid}) exited: {self._exited.get(w.index) or exit_reason(w)}"
                 for w in self.workers if w.index not in self._told]
        return "\n".join(lines) or "  (their exits are above)"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def exit_reason(w: LocalWorker, running: Sequence[int] = ()) -> str:
    """How a worker process ended (and the trials it was running), and why as its log tells: its
    own 'exits:' line, else the end of a traceback, else its last line."""
    code = w.proc.returncode
    how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
    if running:
        how += f" while running trial {', '.join(map(str, running))}"
    tail = w.log_tail()
    found = _EXITS.findall(tail)
    if found:
        return redact(f"{how}: {found[-1]}")
    lines = [line for line in tail.splitlines() if line.strip()]
    if "Traceback (most recent call last):" in tail:
        return redact(f"{how}: {lines[-1]}")
    where = f"; its log: {w.log}" if w.log else ""
    if code is not None and code < 0:
        return redact(f"{how} (by the out-of-memory killer, another process, or its own objective){where}")
    if code:
        return redact(f"{how} without saying why (an objective calling os._exit, or a crash of the interpreter; "
                      f"--subprocess runs each trial in a fresh process, so it fails the trial instead){where}")
    return redact(f"{how}: {lines[-1] if lines else 'no output'}")


def worker_command(url: str, db: str, exp_key: str, objective: str | None, path: Path | None = None) -> str:
    """The command that starts a worker for this experiment, credentials redacted. With `path` (the
    search's directory, against which its objective file is stored) it works from any directory."""
    default_db = urlsplit(url).path.strip("/").split("/")[0] or "hyperdist"
    args = ["hyperdist", "worker", "--mongo", redact(url)] + (["--db", db] if db != default_db else [])
    args += ["--exp", exp_key]
    if path is not None:
        args += ["--path", str(path)]
    if objective:
        target, name = split_reference(objective)
        if path is not None and is_file_target(target):  # --allow paths are read from the working directory
            objective = f"{path / target}:{name}"
        args += ["--allow", objective]
    return " ".join(shlex.quote(a) for a in args)


def hint_text(command: str, url: str) -> str:
    """What to do when no worker works on a search: the command that starts one, and where."""
    local = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
    where = ("on this machine (the server listens on the loopback address only)" if local else
             "on any machine that reaches the database, with the objective importable there")
    text = f"start workers {where} with:\n  {command}"
    if "***" in command:
        text += "\n(put the credentials back in place of ***, or set HYPERDIST_MONGO_URL and leave out --mongo)"
    return text + "\nwaiting for workers ..."
