"""What pruners read of the other trials (hyperdist/objective/pruning.py)."""
from __future__ import annotations

from typing import Any

from hyperdist.store.connection import Connection
from hyperdist.store.document import TrialState
from hyperdist.store.trials import _oid


class Peers(Connection):
    """Hands a running trial the view of its peers that a pruner needs."""

    def peers(self, exp_key: str, trial_id: Any) -> "TrialPeers":
        return TrialPeers(self, exp_key, _oid(trial_id))


class TrialPeers:
    """What pruners read: the values other trials of the experiment reported at a step."""

    def __init__(self, store: Connection, exp_key: str, trial_id: Any) -> None:
        self.store, self.exp_key, self.trial_id = store, exp_key, trial_id

    def values_at(self, step: int, finished_only: bool) -> list[float]:
        key = f"intermediate.{int(step)}"
        query: dict[str, Any] = {"exp_key": self.exp_key, key: {"$exists": True}, "_id": {"$ne": self.trial_id}}
        if finished_only:
            query["state"] = TrialState.DONE
        with self.store._errors("reading from"):
            docs = self.store._trials.find(query, {key: 1})
            values = [(d.get("intermediate") or {}).get(str(int(step))) for d in docs]
        return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def finished_count(self) -> int:
        with self.store._errors("reading from"):
            return self.store._trials.count_documents({"exp_key": self.exp_key, "state": TrialState.DONE})

