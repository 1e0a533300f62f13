"""The coordinator: keeps an experiment's queue of suggested trials filled from its shared history.

One coordinator per experiment holds a lease on it. Each tick it reads only the trials that left
the open set since the last tick (it remembers the `_id`s it has open), folds them into its
numeric history, checks the stop rules, and tops up the trials waiting to be claimed. Trial ids come from an atomic counter and each suggestion's randomness from
`(seed, tid)`, so a coordinator that crashed and resumed neither duplicates ids nor replays draws.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from hyperdist.distributed import snapshot
from hyperdist.distributed.resume import read_history, stored_snapshot
from hyperdist.errors import (AllTrialsFailed, ExperimentExists, ExperimentNotFound, HyperdistError, ObjectiveMismatch,
                     SpaceError, SpaceMismatch)
from hyperdist.distributed.lease import Lease
from hyperdist.distributed.pacing import Pacing
from hyperdist.algorithms.history import PENDING, HistoryTable, classify
from hyperdist.distributed.outcomes import Tally
from hyperdist.objective.reference import same
from hyperdist.objective.result import STATUS_OK, ok_loss
from hyperdist.space.compiled import SearchSpace, space_from_json
from hyperdist.store import FINISHED, ExperimentState, LostLease, Store, TrialState

log = logging.getLogger("hyperdist.coordinator")


@dataclass
class StopRules:
    max_evals: int
    timeout: float | None = None
    loss_threshold: float | None = None
    early_stop_fn: Callable[..., tuple[bool, list]] | None = None


@dataclass
class Progress:
    finished: int
    open: int
    best_loss: float | None
    best_tid: int | None


def trial_seed(seed: int, tid: int) -> int:
    """Independent randomness per trial id, so a resumed search never replays earlier draws."""
    return int(np.random.SeedSequence([seed, tid]).generate_state(1)[0])


def describe_space_change(old: SearchSpace, new: SearchSpace) -> str:
    a, b = old.describe(), new.describe()
    parts = [f"removed {k}" for k in a if k not in b] + [f"added {k}={b[k]}" for k in b if k not in a]
    parts += [f"{k}: {a[k]} -> {b[k]}" for k in a if k in b and a[k] != b[k]]
    return "; ".join(parts) or "the structure around the parameters changed"


def _better(best: tuple[float, int] | None, loss: float | None, tid: int) -> tuple[float, int] | None:
    """The best (loss, tid) so far with this trial's `ok_loss` counted (a pruned trial has a loss for
    TPE but is not a result); ties go to the lower tid, whatever the order trials are seen in, so a
    resume agrees with the run it resumes."""
    if loss is not None and (best is None or (loss, tid) < best):
        return loss, tid
    return best


@dataclass(frozen=True)
class CoordinatorConfig:
    """How a coordinator runs, in one place; none of it changes what is suggested."""
    seed: int = 0                     # the experiment's seed; a resume keeps the stored one
    workers: int = 1                  # workers expected: sizes the queue
    queue: int | None = None          # trials waiting beside the busy ones (None: paced, docs/performance.md)
    lease_seconds: float = 30.0       # the coordinator's lease on its experiment
    trial_lease_seconds: float = 60.0  # a worker's lease on a trial: expired leases are reaped at half of it
    max_attempts: int = 3             # claims of one trial before it ends ERROR
    poll_interval: float = 0.05       # the shortest pause between ticks
    snapshot_every: int = 1000        # finished trials per history snapshot chunk (snapshot.py)
    outage_timeout: float = 300.0     # how long a database outage is waited out before giving up
    gap_seconds: float = 5.0          # a longer pause between ticks (outage, stall) holds reaping back a trial lease
    tid_block: int = 32               # trial ids reserved per round trip to the counter


class Coordinator:
    def __init__(self, store: Store, exp_key: str, space: SearchSpace, algo: Callable[..., list[dict]],
                 rules: StopRules, config: CoordinatorConfig | None = None, *, objective: str | None = None,
                 algo_info: dict | None = None, options: dict | None = None,
                 on_finished: Callable[[dict], None] | None = None) -> None:
        if rules.max_evals < 1:
            raise HyperdistError(f"max_evals={rules.max_evals!r} must be a positive integer")
        self.store, self.exp_key, self.space, self.algo, self.rules = store, exp_key, space, algo, rules
        self.config = config = config or CoordinatorConfig()
        self.seed, self.workers = config.seed, max(1, config.workers)
        self.objective, self.algo_info = objective, algo_info or {"name": getattr(algo, "__module__", "custom")}
        self.options = options or {}  # e.g. {"pruner": {...}}: read by workers from the experiment
        self.pacing = Pacing(self.workers, config.queue, config.poll_interval)
        self.on_finished = on_finished  # told of each finished trial once, as read (hyperdist/integrations/tracking.py)
        self.lease = Lease(store, exp_key, config.lease_seconds)
        self.owner = self.lease.owner
        self.table = HistoryTable(space)  # rows in tid order, keyed by tid
        self.open: dict[Any, int] = {}  # trial _id -> tid, for trials NEW or RUNNING
        self.finished = 0
        self._last_tid = -1  # the highest tid recorded: a snapshot's watermark
        self._unsaved: list[int] = []  # finished trials not in the snapshot yet
        self._snapshot_seq = 0
        self.best: tuple[float, int] | None = None
        self.outcomes = Tally()  # of the trials seen finishing by this coordinator (not the resumed ones)
        self._stop_state: list = []
        self._started = time.monotonic()
        self._reaped = 0.0
        self._ticked = time.monotonic()  # when the last tick that reached the database ended
        self.outage_end: dt.datetime | None = None  # when the last gap in the ticks ended (UTC)
        self._tids: list[int] = []
        self._unsent: list[tuple[int, dict]] = []  # suggestions whose insert was not acknowledged yet
        self.lost: list[LostLease] = []  # trials the reaper took back since the session last read them

    # --- start ----------------------------------------------------------------------------------
    def start(self, resume: bool = False, allow_space_change: bool = False, allow_objective_change: bool = False) -> bool:
        """Create the experiment, or resume it: returns True when it existed already."""
        try:
            exp = self.store.get_experiment(self.exp_key)
        except ExperimentNotFound:
            exp = None
        if exp is not None and not resume:
            raise ExperimentExists(
                f"experiment {self.exp_key!r} already exists ({exp.get('state')}); resume it with --resume "
                "(resume=True) or choose another key"
            )
        if exp is not None and exp.get("space_hash") != self.space.hash and not allow_space_change:
            try:
                change = describe_space_change(space_from_json(exp.get("space")), self.space)
            except SpaceError as exc:
                change = f"the stored one cannot be read: {exc}"
            raise SpaceMismatch(
                f"experiment {self.exp_key!r} was created with a different space ({change}); use a new "
                "experiment key, or allow the change explicitly (--allow-space-change)"
            )
        stored = exp.get("objective") if exp is not None else None
        if exp is not None and self.objective and stored and not same(stored, self.objective) \
                and not allow_objective_change:
            raise ObjectiveMismatch(
                f"experiment {self.exp_key!r} runs the objective {stored!r}, not {self.objective!r}; use a new "
                "experiment key, or allow the change explicitly (--allow-objective-change)")
        if exp is None:
            self.store.create_experiment(
                self.exp_key, space=self.space.to_json(), space_hash=self.space.hash, objective=self.objective,
                algo=self.algo_info, max_evals=self.rules.max_evals, seed=self.seed, options=self.options,
            )
        self.lease.acquire()
        fields: dict[str, Any] = {"state": ExperimentState.RUNNING, "max_evals": self.rules.max_evals, "options": self.options}
        if exp is not None:
            stored_seed = exp.get("seed")
            self.seed = stored_seed if isinstance(stored_seed, int) and not isinstance(stored_seed, bool) else self.seed
            if allow_space_change:
                fields.update(space=self.space.to_json(), space_hash=self.space.hash)
            if allow_objective_change and self.objective:
                fields.update(objective=self.objective)
        self.lease.update(**fields)
        self._resume()
        self._ticked = time.monotonic()
        return exp is not None

    def _resume(self) -> None:
        """Load the history in tid order (resume.py): the snapshot's best first, then each finished
        trial read besides it is counted (`_count_finished`) as it streams in."""
        snap, usable = stored_snapshot(self.store, self.exp_key, self.space)
        self.best = snap.best
        rows, (tids, X, loss, state) = read_history(self.store, self.exp_key, self.space, snap, usable,
                                                     self._count_finished)
        self.open.update(rows.open)
        self.table.extend(tids, X, loss, state)
        self.finished = len(snap.tids) + len(self._unsaved)
        self._snapshot_seq = snap.next_seq
        self._last_tid = int(tids.max()) if len(tids) else -1

    def _record(self, doc: dict) -> None:
        key = doc["_id"]
        tid = self.open.get(key)  # ours: a tid damaged since is not read
        tid = doc["tid"] = int(doc["tid"]) if tid is None else tid
        params = doc.get("params") or {}
        self._last_tid = max(self._last_tid, tid)
        if doc["state"] in FINISHED:
            self.open.pop(key, None)
            self.finished += 1
            batch = doc.get("batch")
            self.pacing.finished(self.finished, batch if isinstance(batch, int) else 1)
            self.table.add(tid, params, *self._count_finished(doc))
            self.outcomes.add(doc["state"], (doc.get("result") or {}).get("status"))
            if self.on_finished is not None:
                self.on_finished(doc)
        else:
            self.open[key] = tid
            self.table.add(tid, params, PENDING)

    def _count_finished(self, doc: dict) -> tuple[int, float | None]:
        """A finished trial's (state, loss) for TPE; it goes into the next snapshot chunk and may
        be the new best."""
        result = doc.get("result") or {}
        done = doc["state"] == TrialState.DONE
        state, loss = classify(done, result)
        self._unsaved.append(int(doc["tid"]))
        self.best = _better(self.best, ok_loss(result, done), int(doc["tid"]))
        return state, loss

    # --- the loop -------------------------------------------------------------------------------
    def tick(self) -> bool:
        """One round: renew, reap, read changes, stop or refill. True when the search is over."""
        started = time.monotonic()
        over = self._round(started)
        self._ticked = time.monotonic()
        self._note_gap(self._ticked - started)  # a call that hung (an outage) counts like a pause
        return over

    def _round(self, now: float) -> bool:
        self.lease.hold()
        thorough = now - self._reaped > min(5.0, self.config.trial_lease_seconds / 2)
        if thorough:
            self._note_gap(time.monotonic() - self._ticked)
            self.lost += self.reap()
            del self.lost[:-100]  # kept for a session to tell; without one (HyperdistSearchCV) only the latest
            self._forget_vanished()
            self._reaped = now
        if self.open:
            # by tid range between reaps (cheaper on SecantusDB); by `_id` with each reap, which also
            # finds a trial whose tid someone changed since
            tids = None if thorough else list(self.open.values())
            for doc in self.store.finished_among(self.exp_key, list(self.open), tids):
                self._record(doc)
        if len(self._unsaved) >= max(1, self.config.snapshot_every):
            self._save_snapshot()
        if self._should_stop():
            return True
        n = min(self._wanted(), self.rules.max_evals - self.finished - len(self.open))
        if n > 0 and not self._unsent:
            self.lease.hold()
            self._unsent = self._suggest(n)
        if self._unsent:
            self.lease.hold()
            self._insert_unsent()
        return False

    def reap(self) -> list[LostLease]:
        """Hand back (or fail) the trials whose lease ran out, sparing for one more lease those whose
        workers may have been cut off with this coordinator (`_note_gap`); returns those taken back."""
        return self.store.reap_expired(self.exp_key, self.config.max_attempts, outage_end=self.outage_end)

    def _forget_vanished(self) -> None:
        """Open trials missing from the database (a restarted server lost its last writes) are
        forgotten, so they are suggested again instead of being waited for forever."""
        if not self.open:
            return
        present = self.store.existing(list(self.open))
        for key in [k for k in self.open if k not in present]:
            tid = self.open.pop(key)
            log.warning("trial %s vanished from the database; it will be replaced", tid)
            self.table.drop(tid)

    def _should_stop(self) -> bool:
        r = self.rules
        if self.finished >= r.max_evals:
            return True
        if r.timeout is not None and time.monotonic() - self._started >= r.timeout:
            return True
        if r.loss_threshold is not None and self.best is not None and self.best[0] <= r.loss_threshold:
            return True
        if r.early_stop_fn is not None and self.finished:
            stop, self._stop_state = r.early_stop_fn(self, *self._stop_state)
            return bool(stop)
        return False

    def _suggest(self, n: int) -> list[tuple[int, dict]]:
        if len(self._tids) < n:  # ids come from the database in blocks: unique even across crashes
            self._tids += self.store.reserve_tids(self.exp_key, max(n, self.config.tid_block))
        tids, self._tids = self._tids[:n], self._tids[n:]
        batch = self.algo(tids, self.space, self.table.observations(), trial_seed(self.seed, tids[0]))
        return list(zip(tids, batch))

    def _insert_unsent(self) -> None:
        """Insert the suggestions until the server acknowledges them. An insert whose reply was lost
        in an outage may have gone in: it is sent again with the same tids, whose `_id`s
        (store.document.trial_key) meet the documents already there, never extra trials."""
        ids = self.store.insert_trials(self.exp_key, self._unsent, self.space.hash)
        for key, (tid, params) in zip(ids, self._unsent):
            self._record({"_id": key, "tid": tid, "state": TrialState.NEW, "params": params})
        self._unsent = []

    def _save_snapshot(self) -> None:
        """Append the trials finished since the last chunk to the experiment's snapshot. A repeat
        after a lost reply finds its own chunks already there, which counts as written."""
        if not self._unsaved:
            return
        self.lease.hold()
        X, loss, state = self.table.rows(self._unsaved)
        docs = snapshot.chunks(self._snapshot_seq, self.space.hash, self._unsaved, X, loss, state, self.best,
                               self._last_tid, list(self.open))
        self.store.append_snapshot(self.exp_key, self.owner, docs)
        self._snapshot_seq += len(docs)
        self._unsaved = []

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> Progress:
        """Tick until a stop rule fires; then mark the experiment done and hand back the lease.
        Whatever ends a run early propagates as it is, with the lease still held: the caller's
        `stop()` marks the experiment stopped and hands it back (or the lease runs out)."""
        while not self._timed_tick():
            if on_progress:
                on_progress(self.progress())
            time.sleep(self.pacing.pause())
        self.lease.hold()
        self.store.cancel_new(self.exp_key)
        self.store.retry(self._save_snapshot, timeout=self.config.outage_timeout)
        self.lease.update(state=ExperimentState.DONE)
        self.lease.release()
        if on_progress:
            on_progress(self.progress())
        return self.progress()

    def fill(self) -> None:
        """One tick before the local workers start: the first suggestions are waiting when they
        first look, and are made without competing with their start-up for the CPU (with 8 workers
        on 2 cores that start had stretched this tick from ~10 ms to ~100 ms)."""
        self._timed_tick()

    def _wanted(self) -> int:
        """New suggestions this tick (pacing.py)."""
        if self.open and self.pacing.counts_new(self.finished):
            return self.pacing.wanted(len(self.open), self.store.count_new(self.exp_key))
        return self.pacing.wanted(len(self.open))

    def _timed_tick(self) -> bool:
        started = time.monotonic()
        over = self.store.retry(self.tick, timeout=self.config.outage_timeout)
        self.pacing.ticked(time.monotonic() - started)
        return over

    def _note_gap(self, seconds: float) -> None:
        """After `seconds` without the database's answers (an outage, a call that hung, this process
        stalled): the workers may not have reached it either, so each running trial keeps one more
        lease of its own length from now before it is reaped (store.reap_expired)."""
        if seconds > self.config.gap_seconds:
            self.outage_end = dt.datetime.now(dt.timezone.utc)

    def stop(self) -> None:
        """Interrupted: the experiment stays resumable; unfinished trials are kept for the next run.
        A coordinator that lost its lease writes nothing: the experiment belongs to the new holder."""
        if self.lease.lost is not None:
            return
        self._save_snapshot()
        self.lease.update(state=ExperimentState.STOPPED)
        self.lease.release()

    def progress(self) -> Progress:
        best = self.best or (None, None)
        return Progress(self.finished, len(self.open), best[0], best[1])

    # Hyperopt's early_stop_fn receives the trials object; `best_trial` is what the built-in rules read.
    @property
    def best_trial(self) -> dict:
        if self.best is None:
            raise AllTrialsFailed("no trial finished with status 'ok' yet")
        return {"tid": self.best[1], "result": {"loss": self.best[0], "status": STATUS_OK}}
