"""The trial protocol: insert, claim, heartbeat, report, release and reap, each a conditional write.

Every state change a worker makes is conditioned on the trial's current state and lease token, so
a worker whose lease was taken away can neither overwrite a result nor steal the trial back. Claims
are a compare-and-set on a few NEW `_id`s read through the claim index, not `find_one_and_update`,
which SecantusDB answers by scanning the whole collection. Measured costs and the query shapes they
led to: docs/store-notes.md.
"""
from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import bson
from bson import ObjectId
from pymongo import ASCENDING, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, DocumentTooLarge, WriteError

from hyperdist.store.connection import Database
from hyperdist.store.document import FINISHED, TrialState, count, new_trial, trial_key, utc, utc_later, utc_now
from hyperdist.store.picks import pick

NEW, RUNNING, DONE, ERROR = TrialState.NEW, TrialState.RUNNING, TrialState.DONE, TrialState.ERROR
# A BSON document holds at most 16 MiB; a result must leave room for the rest of its trial.
_MAX_RESULT_BYTES = 16 * 1024 * 1024 - 64 * 1024
_TOO_LARGE_CODES = frozenset({10334, 17419, 17420})  # the server's "document too large" errors
_GROUP_BYTES = 1 << 20  # reports written as one statement hold at most this much result
_SANE_COUNT = {"$gte": 0, "$lt": 1 << 30}  # matches numbers only (comparisons do not cross types)


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
            raise ValueError(f"report: state {self.state!r} must be {DONE} or {ERROR}")

    @functools.cached_property
    def size(self) -> int:
        """The result and error as BSON bytes, encoded once: what decides the report's statement and
        the size limit (it raises for a result bson cannot encode at all, see `storable`)."""
        return len(bson.encode({"result": self.result, "error": self.error}))


@dataclass(frozen=True)
class LostLease:
    """A trial taken back from a worker that stopped renewing its lease (it died, hung or lost the
    database): handed out again, or failed once it had `max_attempts` claims."""

    tid: Any
    owner: str
    attempt: int
    max_attempts: int

    @property
    def failed(self) -> bool:
        return self.attempt >= self.max_attempts


class TrialQueue(Database):
    """The protocol steps of a trial's life, in the order a trial lives them."""

    def insert_trials(self, exp_key: str, trials: list[tuple[int, dict]], space_hash: str | None = None) -> list:
        """Enqueue NEW trials; `space_hash` lets a worker reuse the experiment it has already loaded.
        A tid inserted before (a repeat after a lost reply) keeps its document: the `_id` is the
        tid's own (`trial_key`)."""
        now = utc_now()
        docs = [new_trial(trial_key(exp_key, tid), exp_key, tid, params, space_hash, now) for tid, params in trials]
        with self._errors("writing to"):
            try:
                self._trials.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        return [doc["_id"] for doc in docs]

    def claim(self, owner: str, lease_seconds: float, exp_key: str | None = None) -> dict | None:
        """Claim a NEW trial (of `exp_key`, or of any experiment); exactly one caller wins each trial."""
        claimed = self.report_and_claim([], owner, lease_seconds, exp_key)[1]
        return claimed[0] if claimed else None

    def report_and_claim(self, reports: Sequence[Report], owner: str, lease_seconds: float,
                         exp_key: str | None = None, n: int = 1, exclude: Sequence[str] = (),
                         device: str | None = None,
                         slot: tuple[int, int] | None = None) -> tuple[list[bool], list[dict]]:
        """Finish the `reports`' trials and claim up to `n` NEW ones: a worker's two round trips.

        NEW trials are read through the claim index, then one `update` command carries the reports
        and one compare-and-set over all the picks (SecantusDB's `findAndModify` scans the whole
        collection, even by `_id`). The reply only counts the documents modified in all, so when it falls
        short one read by `_id` says which picks are ours (by the lease token, shared by the
        trials claimed together) and which reports went in; a claim that lost every pick reads the
        queue once more (at most three compare-and-sets per call).
        Which candidates it tries is store/picks.py's `pick`: one given a `slot` (i, k), the i-th of
        k workers started together, takes the trials whose tid is i modulo k, and another's only
        when it has waited, so k workers reading the queue at once rarely pick the same trial.
        Returns (whether each report was accepted, the claimed trials). A worker serving every
        experiment passes the ones it cannot run as `exclude`. `device` (the GPU the worker sees,
        hyperdist/distributed/gpus.py) is recorded on the trials it claims.
        """
        reports = [storable(r) for r in reports]
        query: dict[str, Any] = {"state": NEW}
        if exp_key is not None:
            query["exp_key"] = exp_key
        else:
            self._across_experiments()
            if exclude:
                query["exp_key"] = {"$nin": list(exclude)}
        accepted: list[bool] | None = None if reports else []
        claimed: list[dict] = []
        # a slot worker claiming short trials of one experiment reads only the tids new to it (picks.Sightings)
        ranged = slot is not None and n > 1 and isinstance(query.get("exp_key"), str)
        with self._errors("claiming from"):
            candidates, rereads, attempts = (self._read_candidates(query, ranged) if n > 0 else []), 1, 3
            while candidates and not claimed and attempts:
                attempts -= 1
                read = candidates
                picks, candidates = pick(candidates, n, slot, self._sightings.stale())
                if slot is not None:
                    self._sightings.left(read, candidates, slot)
                take = len(picks)
                if not take:  # only other workers' trials, which they are about to claim
                    break
                now = utc_now()
                fields = {"state": RUNNING, "owner": owner, "lease_token": uuid.uuid4().hex, "batch": take,
                          "lease_until": now + dt.timedelta(seconds=lease_seconds), "claimed": now, "heartbeat": now}
                if device is not None:
                    fields["device"] = device
                ids = [d["_id"] for d in picks]
                # a count `$inc` can raise (a string, or at 2**63 written by someone else) would fail the
                # whole statement: such a trial is never claimed instead
                cas = ({"_id": ids[0] if take == 1 else {"$in": ids}, "state": NEW, "attempts": _SANE_COUNT},
                       {"$set": fields, "$inc": {"attempts": 1}})
                sent = reports if accepted is None else []
                ok, won = self._resolve(sent, picks, str(fields["lease_token"]), *self._write_reports(sent, cas))
                accepted = ok if sent else accepted
                claimed = [dict(d, **fields, attempts=count(d.get("attempts")) + 1) for d in won]
                if not won and rereads:  # every pick lost: the other candidates may be gone too; look once more
                    candidates, rereads = self._read_candidates(query, ranged), 0
            if accepted is None:  # nothing to claim: the reports alone
                accepted = self._resolve(reports, [], "", *self._write_reports(reports, None))[0]
        return accepted, claimed

    def _write_reports(self, reports: list[Report], cas: tuple[dict, dict] | None) -> tuple[list[bool], int]:
        """The reports and the claim's compare-and-set in one unordered `update` command. Returns
        each report's acceptance where the reply tells it (a result the server refused as too large
        is recorded as an ERROR on its own), and how many documents the command modified.

        The claim is one statement over all its picks (`_id` in the list, still NEW), not one per
        pick, and the reports under one lease are one statement too (`_finish_together`):
        SecantusDB commits each statement on its own, so one statement costs it far less CPU than
        eight (docs/performance.md, "One statement per claim and per lease")."""
        if not reports:
            return [], self._trials.update_many(*cas).modified_count if cas else 0
        if len(reports) == 1 and cas is None:  # the same single command, without the bulk wrapper
            ok = self._report(reports[0])
            return [ok], int(ok)
        sizes = [r.size for r in reports]
        groups = _groups(reports, sizes)
        updates = [UpdateOne(*self._report_update(reports[g[0]])) if len(g) == 1
                   else UpdateMany(*_finish_together([reports[i] for i in g])) for g in groups]
        accepted = [True] * len(reports)
        try:
            modified = self._trials.bulk_write(updates + ([UpdateMany(*cas)] if cas else []),
                                               ordered=False).modified_count
        except BulkWriteError as exc:  # the server refused a result as too large; the rest still ran
            errors = exc.details.get("writeErrors", [])
            if any(e.get("index", len(groups)) >= len(groups) or e.get("code") not in _TOO_LARGE_CODES
                   or len(groups[e["index"]]) > 1 for e in errors):
                raise
            modified = exc.details.get("nModified", 0)
            for e in errors:
                i = groups[e["index"]][0]
                accepted[i] = self._report(reports[i])
                modified += 1  # counted as if it went in, so the arithmetic below holds
        return accepted, modified

    def _resolve(self, reports: list[Report], picks: list[dict], token: str, accepted: list[bool],
                 modified: int) -> tuple[list[bool], list[dict]]:
        """(reports accepted, picks won) from the reply's count, reading those documents by `_id` only
        when the count leaves it open. Only they are read, not the other candidates: SecantusDB
        matches an `_id` `$in` in time that grows with the square of the list (2.5 ms of server CPU
        for 40 ids, 0.5 ms for 6; docs/store-notes.md), and a claim that lost every pick reads the
        queue afresh instead."""
        if modified == len(reports) + len(picks):
            return accepted, picks
        if not reports and modified == 0:
            return accepted, []
        ids = [r.trial_id for r in reports] + [d["_id"] for d in picks]
        held = {d["_id"]: d for d in self._trials.find({"_id": {"$in": ids}}, {"state": 1, "lease_token": 1})}
        accepted = [ok and held.get(r.trial_id, {}).get("state") in FINISHED
                    and held[r.trial_id].get("lease_token") == r.token for ok, r in zip(accepted, reports)]
        return accepted, [d for d in picks if held.get(d["_id"], {}).get("lease_token") == token]

    def _read_candidates(self, query: dict, ranged: bool = False) -> list[dict]:
        """The oldest 32 NEW trials (`ranged`: from the tid `Sightings.floor` on, when it has one),
        shuffled so that workers reading together rarely pick the same one: independent shuffles
        lose fewer picks than a fixed preference per worker, and 32 rather than 16 leaves batches
        of short trials room (both measured in docs/store-notes.md). Whole documents: SecantusDB
        charges more for a projection than for the few fields of a NEW trial it would leave out."""
        floor = self._sightings.floor() if ranged else None
        where = query if floor is None else dict(query, tid={"$gte": floor})
        docs = list(self._trials.find(where).sort("tid", ASCENDING).limit(32))
        self._shuffle.shuffle(docs)
        self._sightings.saw(docs, whole=floor is None)
        return docs

    def heartbeat(self, trial_id: Any, token: str, lease_seconds: float) -> bool:
        """Extend the lease of a running trial, or of a list of trials claimed together (one token)."""
        ids = trial_id if isinstance(trial_id, list) else [trial_id]
        with self._errors("writing to"):
            res = self._trials.update_many({"_id": ids[0] if len(ids) == 1 else {"$in": ids}, "state": RUNNING,
                                            "lease_token": token},
                                           {"$set": {"lease_until": utc_later(lease_seconds), "heartbeat": utc_now()}})
        return res.matched_count == len(ids)

    def report(self, trial_id: Any, token: str, state: str, result: dict | None, error: dict | None = None) -> bool:
        """Write the final state, result and error in one update, only under the caller's lease."""
        report = storable(Report(trial_id, token, state, result, error))  # a bad state raises before any write
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
        size = report.size
        return self._trials.update_one(cond, _finish(ERROR, {"status": "fail"}, _too_large(size),
                                                     token=report.token)).modified_count == 1

    @staticmethod
    def _report_update(report: Report) -> tuple[dict, dict]:
        """The (filter, update) that ends a trial under its lease (a report has been through
        `storable`, which made an oversized result an ERROR)."""
        cond = {"_id": report.trial_id, "state": RUNNING, "lease_token": report.token}
        return cond, _finish(report.state, report.result, report.error, token=report.token)

    def report_intermediate(self, trial_id: Any, token: str, step: int, value: float) -> bool:
        """Record a running trial's progress (`intermediate.<step>`), only under its current lease."""
        with self._errors("writing to"):
            res = self._trials.update_one({"_id": trial_oid(trial_id), "state": RUNNING, "lease_token": token},
                                          {"$set": {f"intermediate.{int(step)}": float(value)}})
        return res.matched_count == 1

    def release(self, trial_id: Any, token: str) -> bool:
        with self._errors("writing to"):
            res = self._trials.update_one({"_id": trial_id, "state": RUNNING, "lease_token": token},
                                          {"$set": {"state": NEW, "owner": None, "lease_token": None,
                                                    "lease_until": None}})
        return res.modified_count == 1

    def reap_expired(self, exp_key: str | None, max_attempts: int, now: dt.datetime | None = None,
                     outage_end: dt.datetime | None = None) -> list[LostLease]:
        """Hand back (or fail, after max_attempts) trials whose lease ran out; returns those it took
        back, so the search can say whose worker stopped heartbeating.

        RUNNING trials are read through the claim index and their leases compared here: a range on
        lease_until in the filter made SecantusDB scan the whole collection. Each write is
        conditioned on the token and lease just read, so a heartbeat landing in between, or
        another reaper, wins over this one. After `outage_end` (when the caller could reach the
        database again after a gap) a trial keeps one more lease of its own length (lease_until -
        heartbeat) counted from then: its worker could not renew it during the outage.
        """
        now = now or utc_now()
        query: dict[str, Any] = {"state": RUNNING}
        if exp_key is not None:
            query["exp_key"] = exp_key
        else:
            self._across_experiments()
        reaped: list[LostLease] = []
        with self._errors("reaping on"):
            running = list(self._trials.find(query, {"_id": 1, "tid": 1, "lease_token": 1, "lease_until": 1,
                                                     "attempts": 1, "owner": 1, "heartbeat": 1}))
            for doc in running:
                lease = doc.get("lease_until")
                if isinstance(lease, dt.datetime) and utc(lease) >= now:
                    continue
                beat = doc.get("heartbeat")
                if outage_end is not None and isinstance(lease, dt.datetime) and isinstance(beat, dt.datetime) \
                        and outage_end + (utc(lease) - utc(beat)) >= now:
                    continue
                cond = {"_id": doc["_id"], "state": RUNNING, "lease_token": doc.get("lease_token"), "lease_until": lease}
                attempts = count(doc.get("attempts"))
                if attempts >= max_attempts:
                    update = _finish(ERROR, {"status": "fail"}, {
                        "type": "LeaseExpired", "traceback": None,
                        "message": f"lease expired on attempt {attempts} of {max_attempts} "
                                   f"(last owner {doc.get('owner')}); the worker probably died"}, now)
                else:
                    # who lost it and when: `hyperdist show` says why a trial needed another attempt
                    update = {"$set": {"state": NEW, "owner": None, "lease_token": None, "lease_until": None,
                                       "lost": {"owner": doc.get("owner"), "at": now, "attempt": attempts}}}
                if self._trials.update_one(cond, update).modified_count:
                    reaped.append(LostLease(doc.get("tid"), str(doc.get("owner"))[:120], attempts, max_attempts))
        return reaped

    def expire_leases(self, exp_key: str, owners: list[str]) -> int:
        """End the leases held by workers known to be dead, so that the next `reap_expired` hands
        their trials out again (or fails them after max_attempts) now rather than a lease later."""
        with self._errors("writing to"):
            res = self._trials.update_many({"exp_key": exp_key, "state": RUNNING, "owner": {"$in": owners}},
                                           {"$set": {"lease_until": utc_now() - dt.timedelta(seconds=1)}})
        return res.modified_count

    def cancel_new(self, exp_key: str) -> int:
        """Drop trials nobody started, when a stop rule ends the search before max_evals."""
        with self._errors("writing to"):
            return self._trials.delete_many({"exp_key": exp_key, "state": NEW}).deleted_count


def _finish(state: str, result: dict | None, error: dict | None, now: dt.datetime | None = None,
            token: str | None = None) -> dict:
    """The update that ends a trial: final state, result and error together, the lease gone. A
    worker's report keeps its lease `token`, so a read can tell whose report finished the trial."""
    update: dict = {"$set": {"state": state, "result": result, "error": error, "finished": now or utc_now(),
                             "lease_until": None}}
    if token is None:
        update["$unset"] = {"lease_token": ""}
    else:
        update["$set"]["lease_token"] = token
    return update


def _groups(reports: list[Report], sizes: list[int]) -> list[list[int]]:
    """Which reports share a statement: those under one lease token, up to _GROUP_BYTES of results
    together; a larger result goes alone, where a refusal as too large names just that trial."""
    groups: list[list[int]] = []
    filling: dict[str, int] = {}  # lease token -> its group still taking reports
    for i, (r, size) in enumerate(zip(reports, sizes)):
        g = filling.get(r.token)
        if g is None or sum(sizes[j] for j in groups[g]) + size > _GROUP_BYTES:
            groups.append([])
            g = len(groups) - 1
            if size <= _GROUP_BYTES:
                filling[r.token] = g
        groups[g].append(i)
    return groups


def _finish_together(reports: list[Report]) -> tuple[dict, list[dict]]:
    """One conditional update ending several trials of one lease: a pipeline that picks each
    trial's own state, result and error by `_id` (`$literal`, so a result's keys are never read
    as operators). Same fields as `_finish`."""
    ids = [r.trial_id for r in reports]

    def each(values: list[Any]) -> dict:
        if all(v == values[0] for v in values[1:]):
            return {"$literal": values[0]}
        return {"$switch": {"branches": [{"case": {"$eq": ["$_id", i]}, "then": {"$literal": v}}
                                         for i, v in zip(ids, values)], "default": None}}

    fields = {"state": each([r.state for r in reports]), "result": each([r.result for r in reports]),
              "error": each([r.error for r in reports]), "finished": {"$literal": utc_now()}, "lease_until": None}
    return {"_id": {"$in": ids}, "state": RUNNING, "lease_token": reports[0].token}, [{"$set": fields}]


def storable(report: Report) -> Report:
    """The report as it will be stored: itself, or an ERROR in its place when its result cannot be
    encoded at all or is too large for a trial document. Workers call it before reporting, so the
    line they log and what they count is what the search will read."""
    try:
        size = report.size
    except (bson.errors.BSONError, OverflowError, RecursionError, TypeError, ValueError) as exc:
        return Report(report.trial_id, report.token, ERROR, {"status": "fail"},
                      {"type": "UnstorableResult", "traceback": None,
                       "message": f"the result cannot be stored: {type(exc).__name__}: {str(exc)[:300]}"})
    if size > _MAX_RESULT_BYTES:
        return Report(report.trial_id, report.token, ERROR, {"status": "fail"}, _too_large(size))
    return report


def _too_large(size: int) -> dict:
    return {"type": "ResultTooLarge", "traceback": None,
            "message": f"the result takes {size / 2**20:.1f} MiB as BSON, more than a trial document can hold "
                       f"(16 MiB in all); store large artifacts elsewhere and return their path"}


def trial_oid(value: Any) -> Any:
    """A trial's `_id` from what crossed a process boundary as a string (a subprocess objective)."""
    return ObjectId(value) if isinstance(value, str) and ObjectId.is_valid(value) else value

