"""The experiments collection: an experiment's document, its coordinator lease and its block of tids."""
from __future__ import annotations

import os
import socket
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from hyperdist.errors import CoordinatorBusy, ExperimentExists, ExperimentNotFound, SearchNotRunning
from hyperdist.store.connection import Database
from hyperdist.store.document import REFUSAL_CHARS, REFUSALS_KEPT, Refusal, new_experiment, utc_later, utc_now


class Experiments(Database):
    """Experiment documents: created once, read by every worker, leased by one coordinator."""

    def create_experiment(self, exp_key: str, *, space: dict, space_hash: str, objective: str | None, algo: dict,
                          max_evals: int, seed: int, options: dict | None = None) -> dict:
        doc = new_experiment(exp_key, space=space, space_hash=space_hash, objective=objective, algo=algo,
                             max_evals=max_evals, seed=seed, options=options, now=utc_now())
        with self._errors("creating an experiment on"):
            try:
                self._experiments.insert_one(doc)
            except DuplicateKeyError:
                raise ExperimentExists(f"experiment {exp_key!r} already exists") from None
        return doc

    def get_experiment(self, exp_key: str) -> dict:
        if not isinstance(exp_key, str):  # a key read from a trial document: never a query operator
            raise ExperimentNotFound(f"no experiment {str(exp_key)[:80]!r}: an experiment key is a string")
        with self._errors("reading from"):
            doc = self._experiments.find_one({"_id": exp_key})
            if doc is None:
                known = [str(d["_id"]) for d in self._experiments.find({}, {"_id": 1}).limit(11)]
        if doc is None:
            more = ", and more: `hyperdist list` shows them all" if len(known) > 10 else ""
            raise ExperimentNotFound(f"no experiment {exp_key!r} in database {self.db_name!r}"
                                     f" (known: {', '.join(known[:10]) or 'none'}{more})")
        return doc

    def experiment_keys(self) -> list[str]:
        with self._errors("reading from"):
            return [str(d["_id"]) for d in self._experiments.find({}, {"_id": 1}).sort("created", ASCENDING)]

    def request_stop(self, exp_key: str, by: str) -> None:
        """Ask the coordinator running `exp_key` to stop (it reads `stop_request` every second)."""
        with self._errors("writing to"):
            res = self._experiments.update_one({"_id": exp_key, "coordinator.lease_until": {"$gte": utc_now()}},
                                               {"$set": {"stop_request": {"by": by, "at": utc_now()}}})
        if res.matched_count == 0:
            state = self.get_experiment(exp_key).get("state")  # raises for an unknown key
            raise SearchNotRunning(f"no search is running on {exp_key!r} ({state}); there is nothing to stop")

    def record_refusal(self, exp_key: str, worker: str, host: str, reason: str) -> None:
        """Note on the experiment that a worker would not run it, so the search and `status` can say
        so; only the last REFUSALS_KEPT are kept, each reason cut short."""
        entry = {"worker": worker[:120], "host": host[:120], "reason": reason[:REFUSAL_CHARS], "at": utc_now()}
        with self._errors("writing to"):
            self._experiments.update_one({"_id": exp_key}, {"$push": {"refusals": {"$each": [entry],
                                                                                   "$slice": -REFUSALS_KEPT}}})

    def search_notices(self, exp_key: str) -> tuple[dict | None, list[Refusal]]:
        """What a running search reads every second: who asked it to stop (None: nobody), and the
        workers' refusals."""
        with self._errors("reading from"):
            doc = self._experiments.find_one({"_id": exp_key}, {"stop_request": 1, "refusals": 1}) or {}
        asked = doc.get("stop_request")
        return (asked if isinstance(asked, dict) else None), Refusal.read(doc.get("refusals"))

    def list_experiments(self) -> list[dict]:
        with self._errors("reading from"):
            return list(self._experiments.find({}, {"space": 0}).sort("created", ASCENDING))

    def update_experiment(self, exp_key: str, *, holder: str | None = None, **fields: Any) -> bool:
        """Set `fields`; with `holder`, only while that coordinator holds the lease (a coordinator
        that lost it writes nothing). Returns whether the experiment was matched."""
        cond: dict[str, Any] = {"_id": exp_key} if holder is None else {"_id": exp_key, "coordinator.owner": holder}
        with self._errors("writing to"):
            return self._experiments.update_one(cond, {"$set": dict(fields, updated=utc_now())}).matched_count == 1

    def coordinator_owner(self, exp_key: str) -> str | None:
        """Who holds the experiment's coordinator lease now (None: nobody)."""
        with self._errors("reading from"):
            doc = self._experiments.find_one({"_id": exp_key}, {"coordinator": 1})
        return ((doc or {}).get("coordinator") or {}).get("owner")

    def delete_experiment(self, exp_key: str) -> int:
        """The experiment, its trials and its snapshot chunks; returns how many trials went. The
        experiment document goes last, so an interrupted delete can be repeated."""
        with self._errors("writing to"):
            trials = self._trials.delete_many({"exp_key": exp_key}).deleted_count
            self._snapshots.delete_many({"exp_key": exp_key})
            self._experiments.delete_one({"_id": exp_key})
        return trials

    def acquire_coordinator(self, exp_key: str, owner: str, lease_seconds: float,
                            steal_from: str | None = None) -> None:
        """Take the experiment's coordinator lease if it is free, expired, ours, or `steal_from`'s."""
        now = utc_now()
        free = {"$or": [{"coordinator": None}, {"coordinator.lease_until": {"$lt": now}},
                        {"coordinator.owner": owner}] + ([{"coordinator.owner": steal_from}] if steal_from else [])}
        with self._errors("writing to"):
            res = self._experiments.update_one(
                {"_id": exp_key, **free},
                {"$set": {"coordinator": {"owner": owner, "lease_until": utc_later(lease_seconds)}, "updated": now}})
            if res.matched_count == 1:  # matched, not modified: a renewal within one ms changes nothing
                return
            holder = (self.get_experiment(exp_key).get("coordinator") or {})
        raise CoordinatorBusy(
            f"experiment {exp_key!r} has a running coordinator ({holder.get('owner')}, lease until "
            f"{holder.get('lease_until')}); stop it first, or wait for its lease to expire"
        )

    def renew_coordinator(self, exp_key: str, owner: str, lease_seconds: float) -> bool:
        with self._errors("writing to"):
            res = self._experiments.update_one(
                {"_id": exp_key, "coordinator.owner": owner},
                {"$set": {"coordinator.lease_until": utc_later(lease_seconds)}})
        return res.matched_count == 1

    def release_coordinator(self, exp_key: str, owner: str) -> None:
        with self._errors("writing to"):
            self._experiments.update_one({"_id": exp_key, "coordinator.owner": owner},
                                         {"$set": {"coordinator": None, "updated": utc_now()}})

    def reserve_tids(self, exp_key: str, n: int) -> list[int]:
        with self._errors("writing to"):
            doc = self._experiments.find_one_and_update(
                {"_id": exp_key}, {"$inc": {"next_tid": n}}, projection={"next_tid": 1},
                return_document=ReturnDocument.AFTER)
        if doc is None:
            raise ExperimentNotFound(f"no experiment {exp_key!r}")
        end = int(doc["next_tid"])
        return list(range(end - n, end))


def holder_gone(owner: Any) -> bool:
    """Whether a coordinator lease holder named 'coordinator:<host>:<pid>:...' (distributed/lease.py)
    ran on this host and its process is gone: its lease is then stale before it runs out."""
    parts = owner.split(":") if isinstance(owner, str) else []
    if len(parts) < 3 or parts[0] != "coordinator" or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
