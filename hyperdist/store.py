"""The MongoDB store: experiments, trials and the protocol steps, each one conditional write.

This is the only module that imports pymongo. Every state change a worker makes is conditioned on
the trial's current state and lease token, so a worker whose lease was taken away can neither
overwrite a result nor steal the trial back. Claims are a compare-and-set on a few NEW `_id`s read
through the claim index, not `find_one_and_update`, which SecantusDB answers by scanning the whole
collection. Measured costs and the query shapes they led to: docs/store-notes.md.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import bson
from bson import ObjectId
from pymongo import ASCENDING, MongoClient, ReturnDocument, UpdateOne
from pymongo.errors import (
    BulkWriteError, ConfigurationError, ConnectionFailure, DocumentTooLarge, DuplicateKeyError, InvalidURI,
    OperationFailure, PyMongoError, WriteError,
)

from .errors import (
    CoordinatorBusy, ExperimentExists, ExperimentNotFound, StoreError, StoreUnavailable, redact,
)

log = logging.getLogger("hyperdist.store")
T = TypeVar("T")

NEW, RUNNING, DONE, ERROR = "NEW", "RUNNING", "DONE", "ERROR"
FINISHED = (DONE, ERROR)
_TRIAL_FIELDS = {"_id": 1, "tid": 1, "state": 1, "params": 1, "result": 1, "error": 1}
_HISTORY_FIELDS = dict(_TRIAL_FIELDS, attempts=1, owner=1, created=1, claimed=1, finished=1, lease_until=1,
                       heartbeat=1, exp_key=1, intermediate=1)
# Server error codes meaning "not now" (shutting down, stepping down, network): worth a retry.
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436})
# A BSON document holds at most 16 MiB; a result must leave room for the rest of its trial.
_MAX_RESULT_BYTES = 16 * 1024 * 1024 - 64 * 1024
_TOO_LARGE_CODES = frozenset({10334, 17419, 17420})  # the server's "document too large" errors


def _now() -> dt.datetime:
    """UTC, truncated to milliseconds as BSON stores it, so a document built here equals the stored one."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _utc(value: dt.datetime) -> dt.datetime:
    """Stored datetimes are UTC; a client made without tz_aware=True returns them naive."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _later(seconds: float) -> dt.datetime:
    return _now() + dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Report:
    """A trial's outcome as a worker hands it in: written only under the lease `token`."""

    trial_id: Any
    token: str
    state: str
    result: dict | None
    error: dict | None = None

    def __post_init__(self) -> None:
        if self.state not in FINISHED:
            raise ValueError(f"report: state {self.state!r} must be DONE or ERROR")


class Store:
    """One database's experiments and trials; each method is one or a few commands to the server."""

    def __init__(self, url: str, db: str = "hyperdist", *, timeout_ms: int = 5000, client: Any = None,
                 event_listeners: Sequence[Any] = ()) -> None:
        self._url = url
        self.db_name = db
        with self._errors("connecting to"):
            self._client = client or MongoClient(  # pymongo reconnects by itself after an outage
                url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True,
                appname="hyperdist", event_listeners=list(event_listeners), **_write_options(url),
            )
        self._db = self._client[db]
        self._shuffle = random.Random()  # seeded from os.urandom here, so forked clients differ
        self._experiments = self._db["experiments"]
        self._trials = self._db["trials"]
        self._snapshots = self._db["snapshots"]
        self._any_index = False  # the index for claims across experiments exists (see _across_experiments)
        self._snapshot_index = False
        try:
            with self._errors("connecting to"):
                self._client.admin.command("ping")
            self.ensure_indexes()  # also where missing credentials show: ping needs none
        except StoreError:
            if client is None:  # don't leave pymongo's monitor threads behind
                self._client.close()
            raise

    @property
    def url(self) -> str:
        """The URL with its credentials: for child processes only, never for messages."""
        return self._url

    @property
    def url_redacted(self) -> str:
        return redact(self._url)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """pymongo's exceptions become one StoreError line, with credentials removed.

        StoreUnavailable marks the ones a retry may cure, so callers (who never import pymongo)
        can tell an outage from a refusal such as failed authentication.
        """
        try:
            yield
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise StoreError(f"invalid MongoDB URL {self.url_redacted!r}: {redact(str(exc))}") from None
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"{doing} {self.url_redacted} failed: {type(exc).__name__}: "
                                   f"{redact(str(exc)).splitlines()[0][:300]}") from None
        except OperationFailure as exc:
            kind = StoreUnavailable if exc.code in _TRANSIENT_CODES else StoreError
            raise kind(f"{doing} {self.url_redacted} failed: {redact(str(exc.details or exc))[:500]}") from None
        except PyMongoError as exc:
            raise StoreError(f"{doing} {self.url_redacted} failed: {type(exc).__name__}: "
                             f"{redact(str(exc)).splitlines()[0][:300]}") from None

    def close(self) -> None:
        self._client.close()

    def retry(self, call: Callable[..., T], *args: Any, timeout: float = 120.0, **kwargs: Any) -> T:
        """Call a store operation, retrying with backoff while the server is unreachable.

        Every protocol step is conditional, so repeating one whose reply was lost is harmless: a
        repeated report or claim simply matches nothing the second time. Only StoreUnavailable is
        retried: a missing experiment or a refused login would fail the same way every time.
        """
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            try:
                return call(*args, **kwargs)
            except StoreUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s; retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def ensure_indexes(self) -> None:
        with self._errors("creating indexes on"):
            self._trials.create_index([("exp_key", ASCENDING), ("tid", ASCENDING)], unique=True, name="exp_tid")
            self._trials.create_index([("exp_key", ASCENDING), ("state", ASCENDING), ("tid", ASCENDING)],
                                      name="claim")

    def _across_experiments(self) -> None:
        """The (state, tid) index, for workers that serve every experiment: made when the first one
        asks rather than up front, because each index costs every trial's three writes (on SecantusDB
        one more index took 4-8% more server CPU per trial, docs/store-notes.md)."""
        if not self._any_index:
            with self._errors("creating indexes on"):
                self._trials.create_index([("state", ASCENDING), ("tid", ASCENDING)], name="claim_any")
            self._any_index = True

    def _snapshots_indexed(self) -> None:
        """The (exp_key, seq) index of snapshot chunks, made by the first coordinator that reads them."""
        if not self._snapshot_index:
            with self._errors("creating indexes on"):
                self._snapshots.create_index([("exp_key", ASCENDING), ("seq", ASCENDING)], unique=True, name="exp_seq")
            self._snapshot_index = True

    # --- experiments ----------------------------------------------------------------------------
    def create_experiment(self, exp_key: str, *, space: dict, space_hash: str, objective: str | None, algo: dict,
                          max_evals: int, seed: int, options: dict | None = None) -> dict:
        now = _now()
        doc = {"_id": exp_key, "space": space, "space_hash": space_hash, "objective": objective, "algo": algo,
               "max_evals": max_evals, "seed": seed, "options": options or {}, "state": "running",
               "coordinator": None, "next_tid": 0, "created": now, "updated": now}
        with self._errors("creating an experiment on"):
            try:
                self._experiments.insert_one(doc)
            except DuplicateKeyError:
                raise ExperimentExists(f"experiment {exp_key!r} already exists") from None
        return doc

    def get_experiment(self, exp_key: str) -> dict:
        with self._errors("reading from"):
            doc = self._experiments.find_one({"_id": exp_key})
            if doc is None:
                known = [d["_id"] for d in self._experiments.find({}, {"_id": 1}).limit(10)]
        if doc is None:
            raise ExperimentNotFound(f"no experiment {exp_key!r} in database {self.db_name!r}"
                                     f" (known: {', '.join(map(str, known)) or 'none'})")
        return doc

    def list_experiments(self) -> list[dict]:
        with self._errors("reading from"):
            return list(self._experiments.find({}, {"space": 0}).sort("created", ASCENDING))

    def update_experiment(self, exp_key: str, **fields: Any) -> None:
        with self._errors("writing to"):
            self._experiments.update_one({"_id": exp_key}, {"$set": dict(fields, updated=_now())})

    def delete_experiment(self, exp_key: str) -> None:
        with self._errors("writing to"):
            self._trials.delete_many({"exp_key": exp_key})
            self._snapshots.delete_many({"exp_key": exp_key})
            self._experiments.delete_one({"_id": exp_key})

    def acquire_coordinator(self, exp_key: str, owner: str, lease_seconds: float,
                            steal_from: str | None = None) -> None:
        """Take the experiment's coordinator lease if it is free, expired, ours, or `steal_from`'s."""
        now = _now()
        free = {"$or": [{"coordinator": None}, {"coordinator.lease_until": {"$lt": now}},
                        {"coordinator.owner": owner}] + ([{"coordinator.owner": steal_from}] if steal_from else [])}
        with self._errors("writing to"):
            res = self._experiments.update_one(
                {"_id": exp_key, **free},
                {"$set": {"coordinator": {"owner": owner, "lease_until": _later(lease_seconds)}, "updated": now}})
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
                {"$set": {"coordinator.lease_until": _later(lease_seconds)}})
        return res.matched_count == 1

    def release_coordinator(self, exp_key: str, owner: str) -> None:
        with self._errors("writing to"):
            self._experiments.update_one({"_id": exp_key, "coordinator.owner": owner},
                                         {"$set": {"coordinator": None, "updated": _now()}})

    def reserve_tids(self, exp_key: str, n: int) -> list[int]:
        with self._errors("writing to"):
            doc = self._experiments.find_one_and_update(
                {"_id": exp_key}, {"$inc": {"next_tid": n}}, projection={"next_tid": 1},
                return_document=ReturnDocument.AFTER)
        if doc is None:
            raise ExperimentNotFound(f"no experiment {exp_key!r}")
        end = int(doc["next_tid"])
        return list(range(end - n, end))

    # --- trials ---------------------------------------------------------------------------------
    def insert_trials(self, exp_key: str, trials: list[tuple[int, dict]], space_hash: str | None = None) -> list:
        """Enqueue NEW trials; `space_hash` lets a worker reuse the experiment it has already loaded."""
        now = _now()
        docs = [{"_id": ObjectId(), "exp_key": exp_key, "tid": tid, "state": NEW, "params": params, "result": None,
                 "attempts": 0, "owner": None, "lease_token": None, "lease_until": None, "created": now,
                 "claimed": None, "finished": None, "error": None, "space_hash": space_hash}
                for tid, params in trials]
        with self._errors("writing to"):
            try:
                self._trials.insert_many(docs, ordered=False)
            except BulkWriteError as exc:  # a re-inserted tid keeps its existing document
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
                taken = {e["op"]["tid"] for e in exc.details["writeErrors"]}
                existing = {d["tid"]: d["_id"] for d in self._trials.find(
                    {"exp_key": exp_key, "tid": {"$in": sorted(taken)}}, {"_id": 1, "tid": 1})}
                for doc in docs:
                    if doc["tid"] in taken:
                        doc["_id"] = existing[doc["tid"]]
        return [doc["_id"] for doc in docs]

    def claim(self, owner: str, lease_seconds: float, exp_key: str | None = None) -> dict | None:
        """Claim a NEW trial (of `exp_key`, or of any experiment); exactly one caller wins each trial."""
        claimed = self.report_and_claim([], owner, lease_seconds, exp_key)[1]
        return claimed[0] if claimed else None

    def report_and_claim(self, reports: Sequence[Report], owner: str, lease_seconds: float,
                         exp_key: str | None = None, n: int = 1) -> tuple[list[bool], list[dict]]:
        """Finish the `reports`' trials and claim up to `n` NEW ones: a worker's two round trips.

        NEW trials are read through the claim index, then one `update` command carries the reports
        and a compare-and-set on each pick (SecantusDB's `findAndModify` scans the whole collection,
        even by `_id`). The reply only counts the documents modified in all, so when it falls
        short one read by `_id` says which picks are ours (by the lease token, shared by the
        trials claimed together), which reports went in, and which other candidates are still NEW.
        A worker takes at most half of the trials it sees waiting, so the others find some too.
        Returns (whether each report was accepted, the claimed trials).
        """
        reports = list(reports)
        query: dict[str, Any] = {"state": NEW}
        if exp_key is not None:
            query["exp_key"] = exp_key
        else:
            self._across_experiments()
        accepted: list[bool] | None = None if reports else []
        claimed: list[dict] = []
        with self._errors("claiming from"):
            candidates, rereads = (self._read_candidates(query) if n > 0 else []), 1
            while candidates and not claimed:
                take = min(n, max(1, len(candidates) // 2))
                picks, candidates = candidates[:take], candidates[take:]
                now = _now()
                fields = {"state": RUNNING, "owner": owner, "lease_token": uuid.uuid4().hex, "batch": take,
                          "lease_until": now + dt.timedelta(seconds=lease_seconds), "claimed": now, "heartbeat": now}
                cas = [({"_id": d["_id"], "state": NEW}, {"$set": fields, "$inc": {"attempts": 1}}) for d in picks]
                sent = reports if accepted is None else []
                ok, won, candidates = self._resolve(sent, picks, fields["lease_token"], candidates,
                                                    *self._write_reports(sent, cas))
                accepted = ok if sent else accepted
                claimed = [dict(d, **fields, attempts=int(d.get("attempts") or 0) + 1) for d in won]
                if not won and not candidates and rereads:  # every pick lost, no other candidate: look once more
                    candidates, rereads = self._read_candidates(query), 0
            if accepted is None:  # nothing to claim: the reports alone
                accepted = self._resolve(reports, [], "", [], *self._write_reports(reports, []))[0]
        return accepted, claimed

    def _write_reports(self, reports: list[Report], cas: list[tuple[dict, dict]]) -> tuple[list[bool], int]:
        """The reports and the claims' compare-and-sets in one unordered `update` command. Returns
        each report's acceptance where the reply tells it (a result the server refused as too large
        is recorded as an ERROR on its own), and how many documents the command modified."""
        updates = [self._report_update(r) for r in reports] + cas
        if len(updates) <= 1:  # the same single command, without the bulk wrapper
            if reports:
                ok = self._report(reports[0])
                return [ok], int(ok)
            return [], self._trials.update_one(*cas[0]).modified_count if cas else 0
        accepted = [True] * len(reports)
        try:
            modified = self._trials.bulk_write([UpdateOne(*u) for u in updates], ordered=False).modified_count
        except BulkWriteError as exc:  # the server refused a result as too large; the rest still ran
            errors = exc.details.get("writeErrors", [])
            if any(e.get("index", len(reports)) >= len(reports) or e.get("code") not in _TOO_LARGE_CODES
                   for e in errors):
                raise
            modified = exc.details.get("nModified", 0)
            for e in errors:
                accepted[e["index"]] = self._report(reports[e["index"]])
                modified += 1  # counted as if it went in, so the arithmetic below holds
        return accepted, modified

    def _resolve(self, reports: list[Report], picks: list[dict], token: str, candidates: list[dict],
                 accepted: list[bool], modified: int) -> tuple[list[bool], list[dict], list[dict]]:
        """(reports accepted, picks won, candidates still NEW) from the reply's count, reading the
        documents by `_id` only when the count leaves it open."""
        if modified == len(reports) + len(picks):
            return accepted, picks, candidates
        if not reports and modified == 0 and not candidates:
            return accepted, [], []
        ids = [r.trial_id for r in reports] + [d["_id"] for d in picks + candidates]
        held = {d["_id"]: d for d in self._trials.find({"_id": {"$in": ids}}, {"state": 1, "lease_token": 1})}
        accepted = [ok and held.get(r.trial_id, {}).get("state") in FINISHED
                    and held[r.trial_id].get("lease_token") == r.token for ok, r in zip(accepted, reports)]
        won = [d for d in picks if held.get(d["_id"], {}).get("lease_token") == token]
        return accepted, won, [c for c in candidates if held.get(c["_id"], {}).get("state") == NEW]

    def _read_candidates(self, query: dict) -> list[dict]:
        """The oldest NEW trials, shuffled so that workers reading together rarely pick the same one.
        Racing over 200 NEW trials with 50 ms evaluations, independent shuffles lost 2-8% of picks
        with 4 workers and 10-13% with 8; a fixed preference per worker (a point on a hash ring of
        tids) lost 16-62%. 32 rather than 16: with batches of short trials, 8 workers on a null
        objective ran 130 trials/s instead of 122 (1.83 commands per trial instead of 2.07); the
        read costs 1.8 ms instead of 1.7 on SecantusDB."""
        docs = list(self._trials.find(query, {"_id": 1, "exp_key": 1, "tid": 1, "params": 1, "attempts": 1,
                                              "space_hash": 1}).sort("tid", ASCENDING).limit(32))
        self._shuffle.shuffle(docs)
        return docs

    def heartbeat(self, trial_id: Any, token: str, lease_seconds: float) -> bool:
        """Extend the lease of a running trial, or of a list of trials claimed together (one token)."""
        ids = trial_id if isinstance(trial_id, list) else [trial_id]
        with self._errors("writing to"):
            res = self._trials.update_many({"_id": ids[0] if len(ids) == 1 else {"$in": ids}, "state": RUNNING,
                                            "lease_token": token},
                                           {"$set": {"lease_until": _later(lease_seconds), "heartbeat": _now()}})
        return res.matched_count == len(ids)

    def report(self, trial_id: Any, token: str, state: str, result: dict | None, error: dict | None = None) -> bool:
        """Write the final state, result and error in one update, only under the caller's lease."""
        report = Report(trial_id, token, state, result, error)  # a bad state raises before any write
        with self._errors("writing to"):
            return self._report(report)

    def _report(self, report: Report) -> bool:
        """A result too big for a trial document is recorded as an ERROR (still under the lease), so
        the worker goes on and the search sees a failed trial rather than one stuck RUNNING."""
        cond, update = self._report_update(report)
        try:
            return self._trials.update_one(cond, update).modified_count == 1
        except (DocumentTooLarge, WriteError) as exc:  # the server's limit can be lower than ours
            if isinstance(exc, WriteError) and exc.code not in _TOO_LARGE_CODES:
                raise
        size = len(bson.encode({"result": report.result, "error": report.error}))
        return self._trials.update_one(cond, _finish(ERROR, {"status": "fail"}, _too_large(size),
                                                     token=report.token)).modified_count == 1

    @staticmethod
    def _report_update(report: Report) -> tuple[dict, dict]:
        """The (filter, update) that ends a trial under its lease; an oversized result becomes an ERROR."""
        cond = {"_id": report.trial_id, "state": RUNNING, "lease_token": report.token}
        size = len(bson.encode({"result": report.result, "error": report.error}))
        if size > _MAX_RESULT_BYTES:
            return cond, _finish(ERROR, {"status": "fail"}, _too_large(size), token=report.token)
        return cond, _finish(report.state, report.result, report.error, token=report.token)

    def report_intermediate(self, trial_id: Any, token: str, step: int, value: float) -> bool:
        """Record a running trial's progress (`intermediate.<step>`), only under its current lease."""
        with self._errors("writing to"):
            res = self._trials.update_one({"_id": _oid(trial_id), "state": RUNNING, "lease_token": token},
                                          {"$set": {f"intermediate.{int(step)}": float(value)}})
        return res.matched_count == 1

    def peers(self, exp_key: str, trial_id: Any) -> "TrialPeers":
        return TrialPeers(self, exp_key, _oid(trial_id))

    def release(self, trial_id: Any, token: str) -> bool:
        with self._errors("writing to"):
            res = self._trials.update_one({"_id": trial_id, "state": RUNNING, "lease_token": token},
                                          {"$set": {"state": NEW, "owner": None, "lease_token": None,
                                                    "lease_until": None}})
        return res.modified_count == 1

    def reap_expired(self, exp_key: str | None, max_attempts: int, now: dt.datetime | None = None) -> int:
        """Hand back (or fail, after max_attempts) trials whose lease ran out; returns how many.

        RUNNING trials are read through the claim index and their leases compared here: a range on
        lease_until in the filter made SecantusDB scan the whole collection. Each write is
        conditioned on the token and lease just read, so a heartbeat landing in between, or
        another reaper, wins over this one.
        """
        now = now or _now()
        query: dict[str, Any] = {"state": RUNNING}
        if exp_key is not None:
            query["exp_key"] = exp_key
        else:
            self._across_experiments()
        reaped = 0
        with self._errors("reaping on"):
            running = list(self._trials.find(query, {"_id": 1, "lease_token": 1, "lease_until": 1, "attempts": 1,
                                                     "owner": 1}))
            for doc in running:
                lease = doc.get("lease_until")
                if lease is not None and _utc(lease) >= now:
                    continue
                cond = {"_id": doc["_id"], "state": RUNNING, "lease_token": doc.get("lease_token"), "lease_until": lease}
                attempts = int(doc.get("attempts") or 0)
                if attempts >= max_attempts:
                    update = _finish(ERROR, {"status": "fail"}, {
                        "type": "LeaseExpired", "traceback": None,
                        "message": f"lease expired on attempt {attempts} of {max_attempts} "
                                   f"(last owner {doc.get('owner')}); the worker probably died"}, now)
                else:
                    update = {"$set": {"state": NEW, "owner": None, "lease_token": None, "lease_until": None}}
                reaped += self._trials.update_one(cond, update).modified_count
        return reaped

    def cancel_new(self, exp_key: str) -> int:
        """Drop trials nobody started, when a stop rule ends the search before max_evals."""
        with self._errors("writing to"):
            return self._trials.delete_many({"exp_key": exp_key, "state": NEW}).deleted_count

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

    # --- snapshots of the numeric history (snapshot.py) -----------------------------------------
    def read_snapshot(self, exp_key: str) -> list[dict]:
        """An experiment's snapshot chunks, in order."""
        self._snapshots_indexed()
        with self._errors("reading from"):
            return list(self._snapshots.find({"exp_key": exp_key}, {"_id": 0, "owner": 0}).sort("seq", ASCENDING))

    def append_snapshot(self, exp_key: str, owner: str, chunks: list[dict]) -> None:
        """Insert chunk documents. A chunk already there from this `owner` is an insert repeated after
        its reply was lost; one from another coordinator means this one has lost its lease."""
        self._snapshots_indexed()
        docs = [dict(c, exp_key=exp_key, owner=owner) for c in chunks]
        with self._errors("writing to"):
            try:
                self._snapshots.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                seqs = sorted(docs[e["index"]]["seq"] for e in errors)
                others = {d.get("owner") for d in self._snapshots.find({"exp_key": exp_key, "seq": {"$in": seqs}},
                                                                       {"owner": 1})} - {owner}
                if others:
                    raise CoordinatorBusy(f"snapshot chunks {seqs} of {exp_key!r} were written by {sorted(others)}: "
                                          "this coordinator has lost its lease") from None

    def delete_snapshot(self, exp_key: str) -> None:
        with self._errors("writing to"):
            self._snapshots.delete_many({"exp_key": exp_key})

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


def _write_options(url: str) -> dict:
    """Retryable writes off, unless the URL sets them: every protocol step is conditional and the
    store repeats it itself (`retry`), while SecantusDB's record of retryable writes made each write
    dearer with every write served (an update by `_id`: 1.1 ms growing to 2.2 ms over 5 000, against a
    flat 1.0 ms without them; docs/store-notes.md)."""
    return {} if re.search(r"[?&]retrywrites=", url, re.IGNORECASE) else {"retryWrites": False}


def _finish(state: str, result: dict | None, error: dict | None, now: dt.datetime | None = None,
            token: str | None = None) -> dict:
    """The update that ends a trial: final state, result and error together, the lease gone. A
    worker's report keeps its lease `token`, so a read can tell whose report finished the trial."""
    update: dict = {"$set": {"state": state, "result": result, "error": error, "finished": now or _now()},
                    "$unset": {"lease_until": "", "lease_token": ""}}
    if token is not None:
        update["$set"]["lease_token"] = token
        del update["$unset"]["lease_token"]
    return update


def _too_large(size: int) -> dict:
    return {"type": "ResultTooLarge", "traceback": None,
            "message": f"the result takes {size / 2**20:.1f} MiB as BSON, more than a trial document can hold "
                       f"(16 MiB in all); store large artifacts elsewhere and return their path"}


def _oid(value: Any) -> Any:
    """Trial ids cross process boundaries as strings (a subprocess objective); turn them back."""
    return ObjectId(value) if isinstance(value, str) and ObjectId.is_valid(value) else value


class TrialPeers:
    """What pruners read: the values other trials of the experiment reported at a step."""

    def __init__(self, store: Store, exp_key: str, trial_id: Any) -> None:
        self.store, self.exp_key, self.trial_id = store, exp_key, trial_id

    def values_at(self, step: int, finished_only: bool) -> list[float]:
        key = f"intermediate.{int(step)}"
        query: dict[str, Any] = {"exp_key": self.exp_key, key: {"$exists": True}, "_id": {"$ne": self.trial_id}}
        if finished_only:
            query["state"] = DONE
        with self.store._errors("reading from"):
            docs = self.store._trials.find(query, {key: 1})
            return [float(d["intermediate"][str(int(step))]) for d in docs]

    def finished_count(self) -> int:
        with self.store._errors("reading from"):
            return self.store._trials.count_documents({"exp_key": self.exp_key, "state": DONE})
