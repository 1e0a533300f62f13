"""The in-memory history of a search, with Hyperopt's `Trials` interface.

Each trial is a plain dict shaped like Hyperopt's (`tid`, `state`, `result`, `misc.vals`,
`misc.idxs`) plus `params` (the flat assignment) and `error`, so existing analysis code keeps
working and the whole history serialises to JSON.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any, Iterator, Mapping, Sequence

from .errors import AllTrialsFailed, HyperdistError
from .history import PENDING, HistoryTable, Observations, classify
from .result import STATUS_FAIL, STATUS_NEW, STATUS_OK, plain
from .space import SearchSpace

JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR = 0, 1, 2, 3
JOB_STATES = (JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR)
FILE_FORMAT = "hyperdist.trials/1"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Trials:
    """An ordered collection of trial dicts; `fmin` appends to it."""

    def __init__(self, exp_key: str | None = None) -> None:
        self.exp_key = exp_key
        self._trials: list[dict[str, Any]] = []
        self._by_tid: dict[int, dict[str, Any]] = {}
        self._table: HistoryTable | None = None
        self._dirty: set[int] = set()

    # --- Hyperopt's read API --------------------------------------------------------------------
    @property
    def trials(self) -> list[dict[str, Any]]:
        return self._trials

    def __len__(self) -> int:
        return len(self._trials)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._trials)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._trials[i]

    def refresh(self) -> None:
        """Kept for Hyperopt compatibility: an in-memory history is always current."""

    @property
    def tids(self) -> list[int]:
        return [t["tid"] for t in self._trials]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [t["result"] for t in self._trials]

    def losses(self, bandit: Any = None) -> list[float | None]:
        return [t["result"].get("loss") if t["result"].get("status") == STATUS_OK else None for t in self._trials]

    def statuses(self, bandit: Any = None) -> list[str]:
        return [t["result"].get("status", STATUS_NEW) for t in self._trials]

    @property
    def vals(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for t in self._trials:
            for label, values in t["misc"]["vals"].items():
                out.setdefault(label, []).extend(values)
        return out

    @property
    def idxs(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for t in self._trials:
            for label, tids in t["misc"]["idxs"].items():
                out.setdefault(label, []).extend(tids)
        return out

    @property
    def best_trial(self) -> dict[str, Any]:
        ok = [t for t in self._trials if t["state"] == JOB_STATE_DONE and t["result"].get("status") == STATUS_OK]
        if not ok:
            raise AllTrialsFailed(
                f"no trial finished with status 'ok' ({len(self._trials)} trials; "
                f"statuses: {sorted(set(self.statuses()))}); see trials.trials[i]['error'] for reasons"
            )
        return min(ok, key=lambda t: t["result"]["loss"])

    @property
    def argmin(self) -> dict[str, Any]:
        return dict(self.best_trial["params"])

    def to_dataframe(self) -> Any:
        """One row per trial (tid, state, loss, status, one column per parameter); needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise HyperdistError("Trials.to_dataframe needs pandas: pip install pandas") from None
        rows = [{"tid": t["tid"], "state": t["state"], "loss": t["result"].get("loss"),
                 "status": t["result"].get("status"), **t["params"]} for t in self._trials]
        return pd.DataFrame(rows)

    def count_by_state(self) -> dict[int, int]:
        counts = dict.fromkeys(JOB_STATES, 0)
        for t in self._trials:
            counts[t["state"]] += 1
        return counts

    # --- writing --------------------------------------------------------------------------------
    def new_trial_ids(self, n: int) -> list[int]:
        start = max(self._by_tid, default=-1) + 1
        return list(range(start, start + n))

    def insert(self, tid: int, params: Mapping[str, Any], labels: Sequence[str] = ()) -> dict[str, Any]:
        labels = list(labels) or list(params)
        trial = {
            "tid": tid,
            "state": JOB_STATE_NEW,
            "params": dict(params),
            "result": {"status": STATUS_NEW},
            "error": None,
            "misc": {
                "tid": tid,
                "vals": {lab: [params[lab]] if lab in params else [] for lab in labels},
                "idxs": {lab: [tid] if lab in params else [] for lab in labels},
            },
            "exp_key": self.exp_key,
            "owner": None,
            "book_time": None,
            "refresh_time": _now(),
        }
        self._trials.append(trial)
        self._by_tid[tid] = trial
        self._dirty.add(tid)
        return trial

    def start(self, tid: int) -> None:
        trial = self._by_tid[tid]
        trial["state"] = JOB_STATE_RUNNING
        trial["book_time"] = trial["refresh_time"] = _now()

    def report_intermediate(self, tid: int, step: int, value: float) -> None:
        self._by_tid[tid].setdefault("intermediate", {})[str(step)] = value

    def peers(self, tid: int) -> "LocalPeers":
        return LocalPeers(self, tid)

    def finish(self, tid: int, result: Mapping[str, Any], error: Mapping[str, Any] | None = None) -> None:
        trial = self._by_tid[tid]
        trial["result"] = dict(result)
        trial["error"] = dict(error) if error else None
        ok = error is None and result.get("status") != STATUS_FAIL
        trial["state"] = JOB_STATE_DONE if ok else JOB_STATE_ERROR
        trial["refresh_time"] = _now()
        self._dirty.add(tid)

    # --- what algorithms read -------------------------------------------------------------------
    def observations(self, space: SearchSpace) -> Observations:
        """The numeric history for `space`, updated incrementally since the last call."""
        if self._table is None or self._table.space is not space:
            self._table = HistoryTable(space)
            self._dirty = set(self._by_tid)
        for tid in sorted(self._dirty):
            trial = self._by_tid[tid]
            self._table.add(tid, trial["params"], *_state_and_loss(trial))
        self._dirty.clear()
        return self._table.observations()

    # --- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, space_hash: str | None = None) -> None:
        """Write the history as JSON (data only), atomically."""
        doc = {"format": FILE_FORMAT, "space_hash": space_hash,
               "trials": [_to_file(t) for t in self._trials if t["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR)]}
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, default=str)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, space_hash: str | None = None) -> "Trials":
        try:
            with open(path) as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            raise HyperdistError(f"cannot read trials file {os.fspath(path)!r}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise HyperdistError(f"{os.fspath(path)!r} is not a hyperdist trials file (format {FILE_FORMAT})")
        if space_hash and doc.get("space_hash") and doc["space_hash"] != space_hash:
            raise HyperdistError(f"trials file {os.fspath(path)!r} was written for a different search space")
        trials = cls()
        for t in doc["trials"]:
            trial = trials.insert(int(t["tid"]), t["params"], t.get("labels", ()))
            trials.finish(trial["tid"], t["result"], t.get("error"))
        return trials


def _state_and_loss(trial: Mapping[str, Any]) -> tuple[int, float | None]:
    if trial["state"] in (JOB_STATE_NEW, JOB_STATE_RUNNING):
        return PENDING, None
    return classify(trial["state"] == JOB_STATE_DONE, trial["result"])


def _to_file(trial: Mapping[str, Any]) -> dict[str, Any]:
    try:
        result = plain(trial["result"])
    except TypeError:
        result = {k: v for k, v in trial["result"].items() if k in ("loss", "status", "failure")}
    return {"tid": trial["tid"], "params": trial["params"], "labels": list(trial["misc"]["vals"]),
            "result": result, "error": trial["error"]}


class LocalPeers:
    """What pruners read in a one-process search: other trials' values at a step."""

    def __init__(self, trials: Trials, tid: int) -> None:
        self.trials, self.tid = trials, tid

    def values_at(self, step: int, finished_only: bool) -> list[float]:
        return [t["intermediate"][str(step)] for t in self.trials.trials
                if t["tid"] != self.tid and str(step) in t.get("intermediate", {})
                and (not finished_only or t["state"] == JOB_STATE_DONE)]

    def finished_count(self) -> int:
        return sum(1 for t in self.trials.trials if t["state"] == JOB_STATE_DONE)
