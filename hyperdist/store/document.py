"""The stored documents' vocabulary: trial and experiment states, the fields each read asks for, and
the typed record readers get of a trial.

This is the one module that spells the stored state strings; everything else names them through
`TrialState` and `ExperimentState` (both `str` enums, so a stored document holds exactly the strings
it always held). Hyperopt's `JOB_STATE_*` integers belong to its compatible surface only
(local/trials.py, distributed/mongotrials.py, views/data.py).
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Mapping, overload


class TrialState(str, enum.Enum):
    """A trial's `state` field: NEW (waiting), RUNNING (claimed under a lease), DONE or ERROR (final)."""

    NEW = "NEW"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"

    __str__ = str.__str__  # "DONE" in messages, f-strings and reprs, as the stored value reads
    __repr__ = str.__repr__
    __format__ = str.__format__  # type: ignore[assignment]  # Enum's signature names its argument differently
    __hash__ = str.__hash__  # a dict keyed by members finds the stored strings too


class ExperimentState(str, enum.Enum):
    """An experiment's `state` field: a coordinator is (or was last) running it, it was stopped
    before its end, or a stop rule ended it."""

    RUNNING = "running"
    STOPPED = "stopped"
    DONE = "done"

    __str__ = str.__str__
    __repr__ = str.__repr__
    __format__ = str.__format__  # type: ignore[assignment]
    __hash__ = str.__hash__


FINISHED = (TrialState.DONE, TrialState.ERROR)
OPEN = (TrialState.NEW, TrialState.RUNNING)
STATES = tuple(TrialState)


def trial_key(exp_key: str, tid: int) -> str:
    """Trial `tid`'s `_id`: one document per tid, held by the `_id` index alone (an index of its own on
    (exp_key, tid) cost SecantusDB a fifth of its CPU per trial; docs/store-notes.md), so an insert
    repeated after a lost reply meets the document already there. The tid is the text after the
    last colon, so no two (exp_key, tid) share a key, and no key looks like an ObjectId."""
    return f"{exp_key}:{int(tid)}"


def trials_text(tids: list, shown: int = 6) -> str:
    """'trial 7', 'trials 7, 9 and 11', or the first `shown` of them and how many more: trials a
    worker held together, as messages and `status` name them."""
    if len(tids) == 1:
        return f"trial {tids[0]}"
    if len(tids) <= shown:
        return f"trials {', '.join(map(str, tids[:-1]))} and {tids[-1]}"
    return f"trials {', '.join(map(str, tids[:shown]))} and {len(tids) - shown} more"


def new_trial(key: Any, exp_key: str, tid: int, params: dict, space_hash: str | None,
              now: dt.datetime) -> dict[str, Any]:
    """A trial document as the coordinator inserts it: NEW, without the fields its claim and report
    write (`owner`, the lease's, `result`, `error`, their times), which readers take as None: on
    each of those writes SecantusDB reads, rewrites and diffs the whole document. Later writes also
    add `heartbeat`, `batch`, `device`, `intermediate` and `lost` (store/trials.py)."""
    return {"_id": key, "exp_key": exp_key, "tid": tid, "state": TrialState.NEW.value, "params": params,
            "attempts": 0, "created": now, "space_hash": space_hash}


def new_experiment(exp_key: str, *, space: dict, space_hash: str, objective: str | None, algo: dict,
                   max_evals: int, seed: int, options: dict | None, now: dt.datetime) -> dict[str, Any]:
    """An experiment document as it is created: running, no coordinator yet, tids from 0. Later
    writes set `coordinator`, `stop_request`, `refusals` and the state (store/experiments.py)."""
    return {"_id": exp_key, "space": space, "space_hash": space_hash, "objective": objective, "algo": algo,
            "max_evals": max_evals, "seed": seed, "options": options or {}, "state": ExperimentState.RUNNING.value,
            "coordinator": None, "next_tid": 0, "created": now, "updated": now}


REFUSALS_KEPT = 10  # an experiment keeps its workers' last refusals, each reason cut to REFUSAL_CHARS
REFUSAL_CHARS = 400


@dataclass(frozen=True)
class Refusal:
    """A worker that would not run an experiment's objective (not allowed, not found on its machine):
    written by the worker on the experiment (`refusals`), read by the search and `hyperdist status`."""

    worker: str
    host: str
    reason: str
    at: dt.datetime | None

    @classmethod
    def read(cls, value: Any) -> list["Refusal"]:
        """The refusals of an experiment document anyone may have written: a list of mappings,
        else none; each field a short string, `at` a time or None."""
        if not isinstance(value, list):
            return []
        return [cls(worker=_text(v.get("worker"), 120), host=_text(v.get("host"), 120),
                    reason=_text(v.get("reason"), REFUSAL_CHARS), at=utc(v.get("at")))
                for v in value[-REFUSALS_KEPT:] if isinstance(v, Mapping)]


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else "?"
    return text if len(text) <= limit else text[:limit - 3] + "..."


# What each read of trial documents asks the server for (projections).
TRIAL_FIELDS = {"_id": 1, "tid": 1, "state": 1, "params": 1, "result": 1, "error": 1}
HISTORY_FIELDS = dict(TRIAL_FIELDS, attempts=1, owner=1, created=1, claimed=1, finished=1, lease_until=1,
                      heartbeat=1, exp_key=1, intermediate=1, device=1)
# What a coordinator's resume reads: what TPE and the stop rules see, not the results' extras.
RESUME_FIELDS = {"_id": 1, "tid": 1, "state": 1, "params": 1, "result.loss": 1, "result.status": 1}
# What the experiments list reads of every trial: state, outcome, when and by whom it finished.
SUMMARY_FIELDS = {"tid": 1, "state": 1, "result.loss": 1, "result.status": 1, "finished": 1, "owner": 1}
# What a tracker reads to know which trials have finished.
STATE_FIELDS = {"_id": 1, "tid": 1, "state": 1}


def count(value: Any) -> int:
    """A counter read from a document anyone may have written: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def planned(value: Any) -> int | None:
    """An experiment's max_evals as a search writes it (an int >= 0); anything else someone wrote
    into the document is unknown (None), so readers show "?" instead of failing on it."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def fields(value: Any) -> dict:
    """A sub-document (an experiment's `coordinator`) as readers use it: a dict, else empty."""
    return value if isinstance(value, dict) else {}


def utc_now() -> dt.datetime:
    """UTC, truncated to milliseconds as BSON stores it, so a document built here equals the stored one."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def utc_later(seconds: float) -> dt.datetime:
    return utc_now() + dt.timedelta(seconds=seconds)


@overload
def utc(value: dt.datetime) -> dt.datetime: ...
@overload
def utc(value: Any) -> dt.datetime | None: ...
def utc(value: Any) -> dt.datetime | None:
    """A stored time as an aware UTC datetime (stored times are UTC, and a client made without
    tz_aware=True, or a local `Trials`, hands back naive ones), else None: the one UTC helper."""
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class TrialRecord:
    """One trial as readers see it, built by `from_doc` from a document that has passed
    `history.valid_trials` (so tid is an int, state a known one, params/result/error of the right
    types). `result` is {} for a trial without one; times are aware UTC or None.

    Hot paths (a worker's claim and report, the coordinator's incremental reads) stay on raw
    documents: they read a few fields of thousands of trials per second.
    """

    tid: int
    state: TrialState
    params: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    id: Any = None
    exp_key: str | None = None
    owner: str | None = None
    device: str | None = None
    attempts: int = 0
    intermediate: dict[str, float] = field(default_factory=dict)
    created: dt.datetime | None = None
    claimed: dt.datetime | None = None
    finished: dt.datetime | None = None
    heartbeat: dt.datetime | None = None
    lease_until: dt.datetime | None = None
    lost: dict[str, Any] | None = None  # the last lease that ran out: owner, at, attempt (TrialQueue.reap_expired)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "TrialRecord":
        owner, device, exp_key = doc.get("owner"), doc.get("device"), doc.get("exp_key")
        return cls(tid=int(doc["tid"]), state=TrialState(doc["state"]), params=dict(doc.get("params") or {}),
                   result=dict(doc.get("result") or {}), error=doc.get("error"), id=doc.get("_id"),
                   exp_key=exp_key if isinstance(exp_key, str) else None,
                   owner=str(owner) if owner is not None else None,
                   device=device if isinstance(device, str) and device else None,
                   attempts=count(doc.get("attempts")),
                   intermediate=dict(doc.get("intermediate") or {}),
                   created=utc(doc.get("created")), claimed=utc(doc.get("claimed")),
                   finished=utc(doc.get("finished")), heartbeat=utc(doc.get("heartbeat")),
                   lease_until=utc(doc.get("lease_until")),
                   lost=doc.get("lost") if isinstance(doc.get("lost"), dict) else None)

    @property
    def status(self) -> str | None:
        """The result's status ("ok", "fail", "pruned", ...), None without a result."""
        status = self.result.get("status")
        return status if isinstance(status, str) else None

    @property
    def finished_state(self) -> bool:
        return self.state in FINISHED
