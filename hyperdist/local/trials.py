"""The in-memory history of a search, with Hyperopt's `Trials` interface.

Each trial is a plain dict shaped like Hyperopt's (`tid`, `state`, `result`, `misc.vals`,
`misc.idxs`) plus `params` (the flat assignment) and `error`, so existing analysis code keeps
working and the whole history serialises to JSON.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping, Sequence

from hyperdist.errors import AllTrialsFailed, HyperdistError
from hyperdist.algorithms.history import PENDING, HistoryTable, Observations, classify
from hyperdist.objective.result import STATUS_NEW, STATUS_OK, STATUS_PRUNED, ok_loss, plain
from hyperdist.space.compiled import SearchSpace
from hyperdist.store.document import utc_now

JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR = 0, 1, 2, 3
JOB_STATES = (JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR)
FILE_FORMAT = "hyperdist.trials/1"


class Trials:
    """An ordered collection of trial dicts; `fmin` appends to it.

    As in Hyperopt, `trials`, `len()` and the read API cover the valid trials (new, running, done);
    a trial whose evaluation raised (state error) stays only in `all_trials`. Counts by state and the
    best trial are kept up to date as trials change, so `fmin`'s bookkeeping costs O(1) per trial.
    """

    def __init__(self, exp_key: str | None = None) -> None:
        self.exp_key = exp_key
        self._reset()

    def _reset(self) -> None:
        self._all: list[dict[str, Any]] = []
        self._trials: list[dict[str, Any]] = []
        self._by_tid: dict[int, dict[str, Any]] = {}
        self._table: HistoryTable | None = None
        self._dirty: set[int] = set()
        self._counts = dict.fromkeys(JOB_STATES, 0)
        self._best: dict[str, Any] | None = None
        self._outcomes = {"ok": 0, "failed": 0, "pruned": 0}
        self._next_tid = 0
        self.attachments: dict[str, Any] = {}

    # --- Hyperopt's read API --------------------------------------------------------------------
    @property
    def trials(self) -> list[dict[str, Any]]:
        return self._trials

    @property
    def all_trials(self) -> list[dict[str, Any]]:
        """Every trial, including those whose evaluation raised (Hyperopt's `_dynamic_trials`)."""
        return self._all

    @property
    def _dynamic_trials(self) -> list[dict[str, Any]]:  # Hyperopt's name, which its users' code reads
        return self._all

    def __len__(self) -> int:
        return len(self._trials)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._trials)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._trials[i]

    def by_tid(self, tid: int) -> dict[str, Any]:
        """The trial with this id, whatever its state."""
        return self._by_tid[tid]

    def refresh(self) -> None:
        """Kept for Hyperopt compatibility: an in-memory history is always current."""

    def delete_all(self) -> None:
        self._reset()

    @property
    def tids(self) -> list[int]:
        return [t["tid"] for t in self._trials]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [t["result"] for t in self._trials]

    def losses(self, bandit: Any = None) -> list[float | None]:
        """Each trial's result loss, whatever its status, as in Hyperopt; None for a pruned trial (its
        loss is the last value it reported, not a final loss) and for one without a loss."""
        return [None if t["result"].get("status") == STATUS_PRUNED else t["result"].get("loss") for t in self._trials]

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
    def specs(self) -> list[Any]:
        return [t["spec"] for t in self._trials]

    @property
    def miscs(self) -> list[dict[str, Any]]:
        return [t["misc"] for t in self._trials]

    @property
    def idxs_vals(self) -> tuple[dict[str, list[int]], dict[str, list[Any]]]:
        return self.idxs, self.vals

    def count_by_state_synced(self, arg: int | Sequence[int], trials: Sequence[Mapping[str, Any]] | None = None) -> int:
        """How many (valid) trials are in state `arg` or in any of the states `arg` lists."""
        states = {arg} if isinstance(arg, int) else set(arg)
        return sum(1 for t in (self._trials if trials is None else trials) if t["state"] in states)

    def count_by_state_unsynced(self, arg: int | Sequence[int]) -> int:
        """The same over every trial, error trials included (an in-memory history is always in sync)."""
        states = {arg} if isinstance(arg, int) else set(arg)
        return sum(self._counts[s] for s in states if s in self._counts)

    @property
    def best_trial(self) -> dict[str, Any]:
        if self._best is None:
            raise AllTrialsFailed(
                f"no trial finished with status 'ok' ({len(self._all)} trials; statuses: "
                f"{sorted({t['result'].get('status') for t in self._all})}); see trials.all_trials[i]['error']"
            )
        return self._best

    @property
    def best_loss(self) -> float | None:
        """The best finite loss of a trial with status ok, or None."""
        return None if self._best is None else self._best["result"]["loss"]

    @property
    def outcome_counts(self) -> tuple[int, int, int]:
        """Finished trials as (ok, failed, pruned), as the progress bar shows them."""
        return self._outcomes["ok"], self._outcomes["failed"], self._outcomes["pruned"]

    @property
    def n_finished(self) -> int:
        """Trials done or errored (the progress bar's count)."""
        return self._counts[JOB_STATE_DONE] + self._counts[JOB_STATE_ERROR]

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
        """Trials per state, error trials included."""
        return dict(self._counts)

    def trial_attachments(self, trial: Mapping[str, Any]) -> "TrialAttachments":
        """Hyperopt's per-trial store: `trials.trial_attachments(trial)[name]` (values in `attachments`)."""
        return TrialAttachments(self.attachments, trial["tid"])

    # --- writing --------------------------------------------------------------------------------
    def new_trial_ids(self, n: int) -> list[int]:
        return list(range(self._next_tid, self._next_tid + n))

    def insert(self, tid: int, params: Mapping[str, Any], labels: Sequence[str] = ()) -> dict[str, Any]:
        labels = list(labels) or list(params)
        trial = {
            "tid": tid,
            "state": JOB_STATE_NEW,
            "spec": None,
            "version": 0,
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
            "refresh_time": utc_now(),
        }
        self._all.append(trial)
        self._trials.append(trial)
        self._by_tid[tid] = trial
        self._counts[JOB_STATE_NEW] += 1
        self._next_tid = max(self._next_tid, tid + 1)
        self._dirty.add(tid)
        return trial

    def _set_state(self, trial: dict[str, Any], state: int) -> None:
        self._counts[trial["state"]] -= 1
        self._counts[state] += 1
        trial["state"] = state

    def start(self, tid: int) -> None:
        trial = self._by_tid[tid]
        self._set_state(trial, JOB_STATE_RUNNING)
        trial["book_time"] = trial["refresh_time"] = utc_now()

    def report_intermediate(self, tid: int, step: int, value: float) -> None:
        self._by_tid[tid].setdefault("intermediate", {})[str(step)] = value

    def peers(self, tid: int) -> "LocalPeers":
        return LocalPeers(self, tid)

    def finish(self, tid: int, result: Mapping[str, Any], error: Mapping[str, Any] | None = None) -> None:
        """Record a result. With an error (the evaluation raised, or returned no usable result) the
        trial's state is error and it leaves `trials`; a result with status fail is a done trial."""
        trial = self._by_tid[tid]
        result = dict(result)
        attachments = result.pop("attachments", None)
        if isinstance(attachments, Mapping):
            for name, value in attachments.items():
                self.attachments[_attachment_key(tid, name)] = value
        trial["result"] = result
        trial["error"] = dict(error) if error else None
        if error:  # where Hyperopt's code looks for it
            trial["misc"]["error"] = (error.get("type"), error.get("message"))
        self._set_state(trial, JOB_STATE_ERROR if error else JOB_STATE_DONE)
        status = None if error else result.get("status")
        self._outcomes["pruned" if status == STATUS_PRUNED else "ok" if status == STATUS_OK else "failed"] += 1
        trial["refresh_time"] = utc_now()
        if error and self._trials and self._trials[-1] is trial:
            self._trials.pop()
        elif error:
            self._trials.remove(trial)
        elif (loss := ok_loss(result)) is not None and (self._best is None or loss < self._best["result"]["loss"]):
            self._best = trial  # the first of equal losses stays best
        self._dirty.add(tid)

    # --- what algorithms read -------------------------------------------------------------------
    def observations(self, space: SearchSpace) -> Observations:
        """The numeric history for `space`, updated incrementally since the last call."""
        # the same space compiled again (each fmin call compiles its argument) keeps the table
        if self._table is None or self._table.space is not space and self._table.space.hash != space.hash:
            self._table = HistoryTable(space)
            self._dirty = set(self._by_tid)
        self._table.space = space
        for tid in sorted(self._dirty):
            trial = self._by_tid[tid]
            self._table.add(tid, trial["params"], *_state_and_loss(trial))
        self._dirty.clear()
        return self._table.observations()

    # --- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, space_hash: str | None = None) -> None:
        """Write the history as JSON (data only), atomically."""
        doc = {"format": FILE_FORMAT, "space_hash": space_hash,
               "trials": [_to_file(t) for t in self._all if t["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR)]}
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


def _attachment_key(tid: int, name: str) -> str:
    return f"ATTACH::{tid}::{name}"


class TrialAttachments:
    """The attachments of one trial, stored in `Trials.attachments` under Hyperopt's key names."""

    def __init__(self, store: dict[str, Any], tid: int) -> None:
        self._store, self._tid = store, tid

    def __contains__(self, name: str) -> bool:
        return _attachment_key(self._tid, name) in self._store

    def __getitem__(self, name: str) -> Any:
        return self._store[_attachment_key(self._tid, name)]

    def __setitem__(self, name: str, value: Any) -> None:
        self._store[_attachment_key(self._tid, name)] = value

    def __delitem__(self, name: str) -> None:
        del self._store[_attachment_key(self._tid, name)]


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
