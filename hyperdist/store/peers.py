"""What pruners read of the other trials (hyperdist/objective/pruning.py)."""
from __future__ import annotations

from typing import Any

from hyperdist.store.connection import Database
from hyperdist.store.document import TrialState
from hyperdist.store.trials import trial_oid


class PeerReads(Database):
    """The reads behind a running trial's view of its peers."""

    def peers(self, exp_key: str, trial_id: Any) -> "TrialPeers":
        return TrialPeers(self, exp_key, trial_oid(trial_id))

    def values_at(self, exp_key: str, trial_id: Any, step: int, finished_only: bool) -> list[float]:
        """The numbers other trials of `exp_key` reported at `step` (only DONE ones if `finished_only`)."""
        key = f"intermediate.{int(step)}"
        query: dict[str, Any] = {"exp_key": exp_key, key: {"$exists": True}, "_id": {"$ne": trial_id}}
        if finished_only:
            query["state"] = TrialState.DONE
        with self._errors("reading from"):
            values = [(d.get("intermediate") or {}).get(str(int(step))) for d in self._trials.find(query, {key: 1})]
        return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def done_count(self, exp_key: str) -> int:
        with self._errors("reading from"):
            return self._trials.count_documents({"exp_key": exp_key, "state": TrialState.DONE})


class TrialPeers:
    """What pruners read: the values other trials of the experiment reported at a step."""

    def __init__(self, store: PeerReads, exp_key: str, trial_id: Any) -> None:
        self.store, self.exp_key, self.trial_id = store, exp_key, trial_id

    def values_at(self, step: int, finished_only: bool) -> list[float]:
        return self.store.values_at(self.exp_key, self.trial_id, step, finished_only)

    def finished_count(self) -> int:
        return self.store.done_count(self.exp_key)
