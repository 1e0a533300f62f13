"""Reads of an experiment's trials: what the coordinator, resume, status and export see."""
from __future__ import annotations

from typing import Iterator

from .connection import Connection
from .trials import DONE, ERROR, FINISHED, NEW, RUNNING, _TRIAL_FIELDS

_HISTORY_FIELDS = dict(_TRIAL_FIELDS, attempts=1, owner=1, created=1, claimed=1, finished=1, lease_until=1,
                       heartbeat=1, exp_key=1, intermediate=1)


class History(Connection):
    """Reads only: none of these changes a trial."""

    def count_new(self, exp_key: str) -> int:
        """How many trials wait to be claimed: one number through the claim index (0.8 ms at 5 000
        trials on SecantusDB; its `count` command scans the collection, 62 ms)."""
        with self._errors("reading from"):
            return self._trials.count_documents({"exp_key": exp_key, "state": NEW})

    def open_trials(self, exp_key: str) -> list[dict]:
        with self._errors("reading from"):
            return list(self._trials.find({"exp_key": exp_key, "state": {"$in": [NEW, RUNNING]}}, _HISTORY_FIELDS))

    def finished_among(self, exp_key: str, ids: list) -> list[dict]:
        with self._errors("reading from"):
            return list(self._trials.find({"_id": {"$in": ids}, "state": {"$in": list(FINISHED)}},
                                          dict(_TRIAL_FIELDS, batch=1)))  # batch: claimed with how many

    def existing(self, ids: list) -> set:
        """Which of these trial _ids still exist (a server that lost recent writes may not have them)."""
        with self._errors("reading from"):
            return {d["_id"] for d in self._trials.find({"_id": {"$in": ids}}, {"_id": 1})}

    def history(self, exp_key: str) -> list[dict]:
        docs = list(self.iter_history(exp_key))
        docs.sort(key=lambda d: d["tid"])
        return docs

    def iter_history(self, exp_key: str, fields: dict | None = None) -> Iterator[dict]:
        """Every trial of an experiment, streamed in no particular order; `fields` narrows what is
        read, so a resume of 100 000 trials never holds their results' extras (measured in
        docs/performance.md)."""
        with self._errors("reading from"):
            yield from self._trials.find({"exp_key": exp_key}, fields or _HISTORY_FIELDS).batch_size(5000)

    def trials_since(self, exp_key: str, tid: int, ids: list, fields: dict) -> list[dict]:
        """The trials a snapshot leaves out: those above its watermark `tid`, through the (exp_key,
        tid) index, and those open when it was taken (`ids`)."""
        with self._errors("reading from"):
            docs = list(self._trials.find({"exp_key": exp_key, "tid": {"$gt": tid}}, fields))
            if ids:
                docs += self._trials.find({"_id": {"$in": ids}, "tid": {"$lte": tid}}, fields)
        return docs

    def counts(self, exp_key: str) -> dict[str, int]:
        out = dict.fromkeys((NEW, RUNNING, DONE, ERROR), 0)
        with self._errors("reading from"):
            for row in self._trials.aggregate([{"$match": {"exp_key": exp_key}},
                                               {"$group": {"_id": "$state", "n": {"$sum": 1}}}]):
                out[row["_id"]] = row["n"]
        return out

    def running_trials(self, exp_key: str) -> list[dict]:
        with self._errors("reading from"):
            return list(self._trials.find({"exp_key": exp_key, "state": RUNNING},
                                          {"tid": 1, "owner": 1, "claimed": 1, "lease_until": 1, "heartbeat": 1}))

