"""The snapshots collection: chunks of an experiment's numeric history (hyperdist/distributed/snapshot.py)."""
from __future__ import annotations

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError

from hyperdist.errors import LeaseLost
from hyperdist.store.connection import Database


class Snapshots(Database):
    """Append-only chunks, one sequence per experiment; see Coordinator._save_snapshot."""

    _snapshot_index = False  # made on first use (_snapshots_indexed), only by coordinators

    def _snapshots_indexed(self) -> None:
        """The (exp_key, seq) index of snapshot chunks, made by the first coordinator that reads them."""
        if not self._snapshot_index:
            with self._errors("creating indexes on"):
                self._snapshots.create_index([("exp_key", ASCENDING), ("seq", ASCENDING)], unique=True, name="exp_seq")
            self._snapshot_index = True

    def read_snapshot(self, exp_key: str) -> list[dict]:
        """An experiment's snapshot chunks, in order."""
        self._snapshots_indexed()
        with self._errors("reading from"):
            return list(self._snapshots.find({"exp_key": exp_key}, {"_id": 0, "owner": 0}).sort("seq", ASCENDING))

    def append_snapshot(self, exp_key: str, owner: str, chunks: list[dict]) -> None:
        """Insert chunk documents. A chunk already there from this `owner` is an insert repeated after
        its reply was lost. One from another coordinator was written after this one loaded the
        history: if this one holds the lease, by a former holder that stalled past its lease (it is
        replaced); if not, this one has lost its lease (LeaseLost)."""
        self._snapshots_indexed()
        docs = [dict(c, exp_key=exp_key, owner=owner) for c in chunks]
        with self._errors("writing to"):
            try:
                self._snapshots.insert_many(docs, ordered=False)
                return
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                seqs = sorted(docs[e["index"]]["seq"] for e in errors)
            stale = {"exp_key": exp_key, "seq": {"$in": seqs}, "owner": {"$ne": owner}}
            others = sorted({str(d.get("owner")) for d in self._snapshots.find(stale, {"owner": 1})})
            if not others:
                return
            if self._experiments.count_documents({"_id": exp_key, "coordinator.owner": owner}, limit=1) == 0:
                raise LeaseLost(f"snapshot chunks {seqs} of {exp_key!r} were written by {others}: "
                                "this coordinator has lost its lease")
            self._snapshots.delete_many(stale)
            self._snapshots.insert_many([d for d in docs if d["seq"] in seqs], ordered=False)

    def delete_snapshot(self, exp_key: str) -> None:
        with self._errors("writing to"):
            self._snapshots.delete_many({"exp_key": exp_key})
